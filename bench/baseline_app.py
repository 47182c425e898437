"""The yardsticks of the HTTP intake bench: a bare FastAPI app served by the same uvicorn,
loop, HTTP protocol and venv as `driftmon serve`, with a no-op POST endpoint and one that
only parses its JSON body with orjson. Whatever driftmon's intake costs beyond these is
its own work.

    python -m bench.baseline_app --port 8001
"""

from __future__ import annotations

import argparse
import gc

import orjson
from fastapi import FastAPI, Request, Response

from service.config import Settings
from service.limits import connection_bounds


def create_baseline_app() -> FastAPI:
    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:  # what the bench waits for, as with driftmon
        return {"status": "ok"}

    @app.post("/noop", status_code=202)
    async def noop(request: Request) -> Response:
        await request.body()  # received as intake receives it, then dropped
        return Response(status_code=202)

    @app.post("/parse", status_code=202)
    async def parse(request: Request) -> Response:
        records = orjson.loads(await request.body())
        return Response(orjson.dumps({"accepted": len(records)}), status_code=202)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    # as `driftmon serve` does (service/cli_serve.py): the start-up heap out of collections
    gc.collect()
    gc.freeze()
    uvicorn.run(
        create_baseline_app(),
        host="127.0.0.1",
        port=args.port,
        log_level=settings.log_level,
        workers=1,
        **connection_bounds(settings),
    )


if __name__ == "__main__":
    main()
