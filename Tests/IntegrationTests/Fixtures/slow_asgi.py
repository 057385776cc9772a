"""An unmodified ASGI app for readiness tests: its lifespan startup takes SLOW_STARTUP seconds
(like the hyperglass API's imports and connections), then GET / answers 200 "ok".

    uvicorn --fd 3 --app-dir Tests/IntegrationTests/Fixtures slow_asgi:app

It never sends READY=1 and serves no health socket: only `readiness = accepting` can tell it is up.
"""
import asyncio, os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(float(os.environ.get("SLOW_STARTUP", "0")))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
