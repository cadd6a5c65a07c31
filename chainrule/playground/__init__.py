"""The playground: train a chainrule network live in the browser and watch every chain-rule term.

``chainrule playground`` (or :func:`run`) starts a local web server (Starlette + uvicorn, the
``[playground]`` extra) that serves the page from this package and trains server-side with
chainrule itself. :class:`Session` holds the state and can be driven without a browser.
"""

from .session import DEFAULTS, Session

__all__ = ["Session", "DEFAULTS", "run", "create_app"]


def create_app(session: Session | None = None, **settings):
    """The Starlette application (one session shared by every page that connects)."""
    from .server import create_app as _create

    return _create(session or Session(**settings))


def run(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = True, **settings):
    """Serve the playground until interrupted; open the page in a browser unless told not to."""
    from .server import serve

    return serve(host=host, port=port, open_browser=open_browser, **settings)
