"""ASGI app whose lifespan startup fails after FAIL_AFTER seconds (like hyperglass with Redis down)."""
import asyncio, os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        msg = await receive()
        await asyncio.sleep(float(os.environ.get("FAIL_AFTER", "2")))
        await send({"type": "lifespan.startup.failed", "message": "redis down"})
        return
