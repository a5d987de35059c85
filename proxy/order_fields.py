"""The venues' order field names, shipped as data: ``proxy/order_fields.yaml``.

A policy rule says ``notional: {max: "50000"}``; which body fields hold the quantity and
the price differs per venue (CoinEx ``amount``/``price``, EVEDEX ``quantity``/``limitPrice``),
so the names live in one reviewed data file keyed by *scheme* (a venue name is the
operator's, the scheme is the API). The file sits inside the package so that it ships with
the code, whatever directory the operator's policies are in. Validated as strictly as a
policy file; read once per process.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from proxy.config_errors import ConfigError, from_validation_error
from proxy.policy import compile_glob
from proxy.policy_fields import Endpoint, OrderFields
from proxy.shipped import ORDER_FIELDS

FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class EndpointModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern=r"^/")  # a policy glob: '*' within a segment, '**' across
    market: FieldName | None = None
    side: FieldName | None = None
    quantity: FieldName | None = None
    price: FieldName | None = None
    notional: FieldName | None = None  # a field that *is* the notional (a cash amount)
    source: str = Field(min_length=1)  # where the names come from: a doc, an SDK, the sim

    @model_validator(mode="after")
    def _computable(self) -> EndpointModel:
        if self.notional is None and (self.quantity is None or self.price is None):
            raise ValueError("an order endpoint needs quantity and price, or a notional field")
        return self


class OrderFieldsFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    schemes: dict[str, list[EndpointModel]]


@functools.cache
def load_order_fields(path: Path = ORDER_FIELDS) -> OrderFields:
    """The per-scheme order field names, read and validated once per process."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the order field names ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(path, "", "invalid YAML") from None
    try:
        model = OrderFieldsFileModel.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None
    schemes = {scheme: tuple(_endpoint(e) for e in endpoints) for scheme, endpoints in model.schemes.items()}
    return OrderFields(str(path), schemes)


def _endpoint(model: EndpointModel) -> Endpoint:
    return Endpoint(
        method=model.method,
        pattern=model.path,
        path=compile_glob(model.path),
        quantity=model.quantity,
        price=model.price,
        notional=model.notional,
        market=model.market,
        side=model.side,
    )
