"""What every process of one hub shares (HUB_REDIS_URL): redis.py opens the one client each
process uses for rate limits, persisted queries, subscription seats and the notification
doorbell, and says once when Redis stops answering."""

from shared_state.redis import SharedRedis

__all__ = ["SharedRedis"]
