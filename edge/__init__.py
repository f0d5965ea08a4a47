"""The HTTP and WebSocket edge in front of the graph: the gate, the downloads, the WebSocket
protocol. Only the composition root (app.py) imports it."""
