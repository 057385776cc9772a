"""ASGI app for the survey: 2 s import (SLOW_IMPORT) and/or 2 s lifespan startup (SLOW_STARTUP)."""
import asyncio, os, time
time.sleep(float(os.environ.get("SLOW_IMPORT", "0")))

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await asyncio.sleep(float(os.environ.get("SLOW_STARTUP", "0")))
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
