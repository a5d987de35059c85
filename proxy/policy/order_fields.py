"""The venues' order field names, shipped as data: ``proxy/policy/order_fields.yaml``.

A policy rule says ``notional: {max: "50000"}``; which body fields hold the quantity and
the price differs per venue (CoinEx ``amount``/``price``, EVEDEX ``quantity``/``limitPrice``),
so the names live in one reviewed data file keyed by *scheme* (a venue name is the
operator's, the scheme is the API). The file sits inside the package so that it ships with
the code, whatever directory the operator's policies are in. Validated as strictly as a
policy file; read once per process.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_DOWN, ROUND_HALF_UP
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from proxy.config_errors import ConfigError, from_validation_error
from proxy.policy.fields import Endpoint, OrderFields, Rounding
from proxy.shipped import ORDER_FIELDS

FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_PARTS = re.compile(r"(\{[A-Za-z][A-Za-z0-9_]{0,63}\}|\*\*|\*)")
_MODES = {"half_up": ROUND_HALF_UP, "down": ROUND_DOWN}


class EndpointModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method
    path: str = Field(pattern=r"^/")  # a policy glob: '*' within a segment, '**' across; {field}
    market: FieldName | None = None
    side: FieldName | None = None
    quantity: FieldName | None = None
    price: FieldName | None = None
    notional: FieldName | None = None  # a field that *is* the notional (a cash amount)
    batch: Annotated[str, StringConstraints(pattern=r"^(\$|[A-Za-z0-9_.-]{1,64})$")] | None = None
    attached: tuple[FieldName, ...] = ()  # body keys of attached orders: refused under field rules
    source: str = Field(min_length=1)  # where the names come from: a doc, an SDK, the sim

    @model_validator(mode="after")
    def _computable(self) -> EndpointModel:
        if self.price is not None and self.quantity is None:
            raise ValueError("price needs quantity")
        priced = self.notional is not None or self.price is not None
        if not priced and "{" not in self.path:
            raise ValueError("an order endpoint needs quantity and price, a notional field, or {path} fields")
        return self


class RoundingModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decimals: int = Field(ge=0, le=40)
    mode: Literal["half_up", "down"]


class OrderFieldsFileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    placement: dict[str, dict[Method, Literal["body", "query"]]] = {}
    rounding: dict[str, RoundingModel] = {}
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
    rounding = {scheme: Rounding(r.decimals, _MODES[r.mode]) for scheme, r in model.rounding.items()}
    placement: dict[str, dict[str, str]] = {
        scheme: {str(method): str(where) for method, where in methods.items()}
        for scheme, methods in model.placement.items()
    }
    return OrderFields(str(path), schemes, placement, rounding)


def compile_endpoint(pattern: str) -> re.Pattern[str]:
    """A policy glob with ``{field}`` segments as named groups. Case-insensitive and with an
    optional trailing slash: a venue may route those spellings here, and finding the endpoint
    only adds checks (path fields, batches, notional names)."""
    regex = []
    for part in _PARTS.split(pattern):
        if part == "**":
            regex.append(".*")
        elif part == "*":
            regex.append("[^/]*")
        elif part.startswith("{"):
            regex.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            regex.append(re.escape(part))
    return re.compile("".join(regex) + r"/?\Z", re.DOTALL | re.IGNORECASE)


def _endpoint(model: EndpointModel) -> Endpoint:
    return Endpoint(
        method=model.method,
        pattern=model.path,
        path=compile_endpoint(model.path),
        quantity=model.quantity,
        price=model.price,
        notional=model.notional,
        market=model.market,
        side=model.side,
        batch=model.batch,
        attached=model.attached,
    )
