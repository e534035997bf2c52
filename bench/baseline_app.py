"""The baseline the gateway is measured against: a bare FastAPI endpoint behind uvicorn with mTLS.

One async handler that validates a small JSON body with a Pydantic model and echoes it back, on
the gateway's server stack and TLS settings (uvicorn, httptools, uvloop, TLS 1.2+ with the
gateway's cipher list, a client certificate required), and nothing else: no database, no
middleware, no metrics. The gateway's CPU per notification divided by this one's CPU per request
is the price of what the gateway adds.

``python -m bench.baseline_app --port P --cert C --key K --ca CA``
"""

from __future__ import annotations

import argparse
import ssl

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from gateway.tls import TLS12_CIPHERS

app = FastAPI()


class Echo(BaseModel):
    recipient: str
    message: str


@app.post("/echo", status_code=201)
async def echo(body: Echo) -> Echo:
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        ssl_ca_certs=args.ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        ssl_ciphers=TLS12_CIPHERS,
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
