"""GraphiQL served by the hub itself: the page, and the assets it loads vendored into the
package (assets/README.md says from where), so that the IDE opens on a closed network."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
ASSET_DIRECTORY = HERE / "assets"
ASSET_ROUTE: Final = "/graphiql/assets"


@dataclass(frozen=True)
class Asset:
    """A file of an npm package, as strawberry's page pins it; `integrity` is the Subresource
    Integrity hash of its bytes, which the browser checks before running or applying it."""

    package: str
    version: str
    file: str
    integrity: str

    @property
    def path(self) -> str:
        """Where it lies under assets/ (and under ASSET_ROUTE): `<package>@<version>/<file>`."""
        return f"{self.package}@{self.version}/{self.file}"

    def tag(self) -> str:
        url = f"{ASSET_ROUTE}/{self.path}"
        if self.file.endswith(".css"):
            return f'    <link rel="stylesheet" href="{url}" integrity="{self.integrity}" />'
        return f'    <script src="{url}" integrity="{self.integrity}"></script>'


# In the order the page loads them: React before GraphiQL, GraphiQL before its plugin.
ASSETS: Final = (
    Asset(
        "react",
        "18.2.0",
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    Asset(
        "react-dom",
        "18.2.0",
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
)


@cache
def graphiql_page() -> str:
    """The page, its stylesheets and scripts pointing at ASSET_ROUTE with their hashes."""
    template = (HERE / "page.html").read_text(encoding="utf-8")
    stylesheets = "\n".join(a.tag() for a in ASSETS if a.file.endswith(".css"))
    scripts = "\n".join(a.tag() for a in ASSETS if not a.file.endswith(".css"))
    return template.replace("{{ STYLESHEETS }}", stylesheets).replace("{{ SCRIPTS }}", scripts)


def graphiql_routes() -> list[Mount]:
    """The vendored assets (and their licences), served as files."""
    return [Mount(ASSET_ROUTE, StaticFiles(directory=ASSET_DIRECTORY))]
