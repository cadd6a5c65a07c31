"""The playground's web server: Starlette routes over one :class:`~.session.Session`.

Every handler is ``async`` and calls the session directly, so all work happens on the event loop's
one thread (no locks needed; one epoch of a Playground-sized network takes milliseconds). While
the page plays, a WebSocket streams binary frames (:meth:`Session.frame`); the page acknowledges
each frame after drawing it and the server sends the next one only then, so a slow page is never
flooded and the frame rate is what the page actually shows.

Nothing here reaches outside the machine: the page, its script and its style are files of this
package, and the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import webbrowser
from importlib import resources

from ..errors import ChainruleError
from .session import Session

__all__ = ["create_app", "serve"]

STATIC = "static"


def _static_dir() -> str:
    return str(resources.files("chainrule.playground").joinpath(STATIC))


class _Api:
    """The page's HTTP API over one session: one method per route (``routes()`` lists them).
    A handler wrapped by ``guarded`` answers a ChainruleError with status 400 and its message
    as JSON."""

    def __init__(self, session: Session):
        from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

        self.s = session
        self.json, self.file, self.text, self.raw = (
            JSONResponse,
            FileResponse,
            PlainTextResponse,
            Response,
        )

    def error(self, err, status=400):
        return self.json({"error": " ".join(str(err).split())}, status_code=status)

    @staticmethod
    async def body(request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise ChainruleError("playground: the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ChainruleError("playground: the request body must be a JSON object")
        return data

    def guarded(self, fn):
        async def handler(request):
            try:
                return await fn(request)
            except ChainruleError as err:
                return self.error(err)

        return handler

    def frame_response(self):
        return self.raw(self.s.frame(), media_type="application/octet-stream")

    async def index(self, request):
        return self.file(
            os.path.join(_static_dir(), "index.html"), headers={"Cache-Control": "no-store"}
        )

    async def state(self, request):
        return self.json(self.s.state())

    async def settings(self, request):
        self.s.update(await self.body(request))
        return self.json(self.s.state())

    async def frame(self, request):
        return self.frame_response()

    async def step(self, request):
        data = await self.body(request) if await request.body() else {}
        n = data.get("epochs", 1)
        if not isinstance(n, int) or not 1 <= n <= 10000:
            raise ChainruleError(
                f"playground: epochs={n!r}; expected a whole number from 1 to 10000"
            )
        for _ in range(n):
            if self.s.pending is not None:
                self.s.phase_update()
            self.s.train_epoch()
        return self.frame_response()

    async def reset(self, request):
        self.s.reset()
        return self.json(self.s.state())

    async def regenerate(self, request):
        self.s.regenerate()
        return self.json(self.s.state())

    async def chain(self, request):
        q = request.query_params
        point = q.get("point")
        if point is not None:
            try:
                point = int(point)
            except ValueError:
                raise ChainruleError(
                    f"playground: point={point!r}; expected a whole number"
                ) from None
        return self.json(self.s.chain(q.get("param", ""), point))

    async def param(self, request):
        data = await self.body(request)
        self.s.set_param(data.get("name", ""), data.get("value"))
        return self.frame_response()

    async def points(self, request):
        data = await self.body(request)
        self.s.add_point(
            data.get("x1"), data.get("x2"), data.get("label"), data.get("split", "train")
        )
        return self.json(self.s.state())

    async def upload(self, request):
        raw = await request.body()
        if len(raw) > 5_000_000:
            raise ChainruleError(
                f"playground: the upload has {len(raw)} bytes; expected at most 5 MB"
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ChainruleError("playground: the uploaded file is not UTF-8 text") from None
        self.s.load_csv(text, request.query_params.get("name", "upload.csv"))
        return self.json(self.s.state())

    async def phase_begin(self, request):
        p = self.s.phase_begin()
        return self.json({k: v for k, v in p.items() if k != "before"})

    async def phase_update(self, request):
        self.s.phase_update()
        return self.frame_response()

    async def neuron(self, request):
        return self.json(self.s.neuron_grid(request.query_params.get("node", "")))

    async def download_model(self, request):
        with tempfile.TemporaryDirectory() as d:
            path = self.s.save_model(os.path.join(d, "playground.safetensors"))
            with open(path, "rb") as f:
                data = f.read()
        return self.raw(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="playground.safetensors"'},
        )

    async def download_script(self, request):
        return self.text(
            self.s.script(),
            headers={"Content-Disposition": 'attachment; filename="playground_train.py"'},
        )

    async def download_data(self, request):
        split = request.query_params.get("split", "all")
        if split not in ("all", "train", "test"):
            raise ChainruleError(f"playground: split={split!r}; expected all, train or test")
        return self.text(
            self.s.data_csv(split),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="playground_{split}.csv"'},
        )

    def routes(self) -> list:
        from starlette.routing import Route

        g, post = self.guarded, ["POST"]
        return [
            Route("/", self.index),
            Route("/favicon.ico", lambda request: self.raw(status_code=204)),
            Route("/api/state", self.state),
            Route("/api/frame", self.frame),
            Route("/api/settings", g(self.settings), methods=post),
            Route("/api/step", g(self.step), methods=post),
            Route("/api/reset", g(self.reset), methods=post),
            Route("/api/regenerate", g(self.regenerate), methods=post),
            Route("/api/chain", g(self.chain)),
            Route("/api/param", g(self.param), methods=post),
            Route("/api/points", g(self.points), methods=post),
            Route("/api/upload", g(self.upload), methods=post),
            Route("/api/phase/begin", g(self.phase_begin), methods=post),
            Route("/api/phase/update", g(self.phase_update), methods=post),
            Route("/api/neuron", g(self.neuron)),
            Route("/api/download/model", g(self.download_model)),
            Route("/api/download/script", g(self.download_script)),
            Route("/api/download/data", g(self.download_data)),
        ]


def _player_socket(s: Session):
    """The WebSocket handler: play/pause/ack commands from the page; while playing, an epoch
    trains while the page draws the last frame and the next frame goes out on its ack. When
    the last page goes away, training stops."""
    from starlette.websockets import WebSocketDisconnect

    clients = {"n": 0}

    async def ws(websocket):
        await websocket.accept()
        clients["n"] += 1
        waiting = asyncio.Event()
        waiting.set()

        async def player():
            # the next epoch trains while the page draws the last frame; it is sent on the ack
            while True:
                if not s.playing:
                    await asyncio.sleep(0.02)
                    continue
                if s.pending is not None:
                    s.phase_update()
                s.train_epoch()
                data = s.frame()
                await waiting.wait()
                waiting.clear()
                await websocket.send_bytes(data)
                await asyncio.sleep(0)  # let requests (GET /api/state, pause) through

        task = asyncio.create_task(player())
        try:
            while True:
                msg = await websocket.receive_json()
                cmd = msg.get("cmd") if isinstance(msg, dict) else None
                if cmd == "play":
                    s.playing, s.stop_reason = True, None
                    waiting.set()
                elif cmd == "pause":
                    s.playing = False
                    waiting.set()
                elif cmd == "ack":
                    waiting.set()
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass
        finally:
            task.cancel()
            clients["n"] -= 1
            if clients["n"] == 0:  # the last page went away: stop training
                s.playing = False

    return ws


def create_app(session: Session):
    """The Starlette app of the playground over ``session``: the page, its HTTP API, the
    WebSocket that streams frames, and the static files."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, WebSocketRoute
    from starlette.staticfiles import StaticFiles

    routes = _Api(session).routes() + [
        WebSocketRoute("/ws", _player_socket(session)),
        Mount("/static", app=StaticFiles(directory=_static_dir()), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.session = session
    return app


def ws_impl() -> str:
    """uvicorn's WebSocket implementation name for the installed websockets (newer uvicorn
    prefers 'websockets-sansio' and warns about 'websockets')."""
    try:
        from uvicorn.config import WS_PROTOCOLS
    except ImportError:
        return "websockets"
    return "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = True, **settings) -> None:
    """Run the server in this thread until interrupted (Ctrl-C)."""
    try:
        import starlette  # noqa: F401
        import uvicorn
        import websockets  # noqa: F401
    except ImportError as err:
        raise ChainruleError(
            f"the playground needs starlette, uvicorn and websockets ({err.name} "
            "is missing): pip install 'chainrule[playground]'"
        ) from None
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ChainruleError(
                f"playground: cannot listen on {host}:{port} ({err.strerror}); "
                "choose another --port or --host"
            ) from None
    session = Session(**settings)
    app = create_app(session)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws=ws_impl())
    server = uvicorn.Server(config)
    if open_browser:

        async def opener():
            while not server.started:
                await asyncio.sleep(0.05)
            webbrowser.open(url)

        orig = server.startup

        async def startup(sockets=None):
            await orig(sockets=sockets)
            asyncio.get_running_loop().create_task(opener())

        server.startup = startup  # type: ignore[method-assign]  # open the page once it listens
    print(f"chainrule playground: {url} (Ctrl-C stops it)", flush=True)
    server.run()
