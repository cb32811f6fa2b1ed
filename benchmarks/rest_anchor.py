"""The REST anchor: a FastAPI app with the order routes' shape and nothing behind them (no key, no
log, no read model), served by uvicorn as `meltica up` serves the API. `python -m
benchmarks.rest_anchor PORT`; `benchmarks.rest.anchor` loads it with the benchmark's clients."""

from __future__ import annotations

import sys
import uuid
from decimal import Decimal
from typing import Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Order(BaseModel):
    account_id: str
    instrument_id: str
    side: Literal["BUY", "SELL"]
    type: str
    quantity: Decimal
    client_order_id: str


@app.post("/v1/orders", status_code=202)
def submit(order: Order) -> dict[str, str]:
    return {"order_id": str(uuid.uuid4()), "client_order_id": order.client_order_id, "status": "SUBMITTED"}


@app.get("/v1/orders/{order_id}")
def get(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "FILLED", "quantity": "0.001"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
