"""What the hub hands out as opaque text and takes back only as it issued it: global ids and cursors."""
