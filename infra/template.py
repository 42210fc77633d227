"""Reads template.yaml, the one source of truth, for the tests and the local stack.

It resolves the few intrinsics the template uses (Ref, GetAtt, Sub, Join, If, Equals) against the physical
names of a provisioned stack, and lists each function with its handler, environment and events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
# The intrinsic functions Resolver evaluates; any other one-key mapping is plain data.
INTRINSICS = ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::If", "Fn::Equals", "Condition")


@cache
def load(path: Path = TEMPLATE) -> dict[str, Any]:
    loaded: dict[str, Any] = _plain(cfn_yaml.load(str(path)))
    return loaded


def _plain(node: Any) -> Any:
    """cfn-lint's node classes as plain dicts, lists and strings."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def resources(of_type: str | None = None) -> dict[str, dict[str, Any]]:
    found = load()["Resources"]
    return {k: v for k, v in found.items() if of_type is None or v["Type"] == of_type}


@dataclass
class Resolver:
    """Physical ids and ARNs of provisioned resources, and the parameter values in force."""

    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"

    def __post_init__(self) -> None:
        for name, spec in load().get("Parameters", {}).items():
            self.params.setdefault(name, str(spec.get("Default", "")))

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "chatsphere-local",
        }

    def ref(self, name: str) -> str:
        for table in (self.params, self.refs, self.pseudo()):
            if name in table:
                return table[name]
        raise KeyError(f"unresolved Ref {name}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(load()["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn in INTRINSICS:
                return self._intrinsic(fn, arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _intrinsic(self, fn: str, arg: Any) -> Any:
        """The value of one of INTRINSICS applied to `arg`."""
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._attr(logical, attr)
        if fn == "Fn::Sub":
            return self._sub(arg)
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(str(part) for part in self.resolve(parts))
        if fn == "Fn::If":
            cond, yes, no = arg
            return self.resolve(yes if self.condition(cond) else no)
        if fn == "Fn::Equals":
            a, b = (self.resolve(v) for v in arg)
            return a == b
        return self.condition(arg)  # "Condition"

    def _attr(self, logical: str, attr: str) -> Any:
        """A provisioned resource's attribute; or the ARN of the role SAM makes for a function (<Function>Role),
        which the template may name (a key or bucket policy) though it declares no such resource."""
        if (logical, attr) not in self.attrs and attr == "Arn" and logical.removesuffix("Role") in functions():
            return f"arn:aws:iam::{self.account}:role/chatsphere-local-{logical}"
        return self.attrs[(logical, attr)]

    def _sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self._attr(logical, attr))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    environment: dict[str, Any]
    events: dict[str, dict[str, Any]]
    properties: dict[str, Any]

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def functions() -> dict[str, Function]:
    """Every AWS::Serverless::Function with Globals merged in (unresolved intrinsics)."""
    glob = load().get("Globals", {}).get("Function", {})
    out = {}
    for logical, spec in resources("AWS::Serverless::Function").items():
        props = {**glob, **spec["Properties"]}
        env = {
            **glob.get("Environment", {}).get("Variables", {}),
            **spec["Properties"].get("Environment", {}).get("Variables", {}),
        }
        out[logical] = Function(logical, props["Handler"], env, spec["Properties"].get("Events", {}), props)
    return out


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as declared, e.g. /v1/subjects/{subject_id}
    function: str  # logical id
    event: str

    @property
    def pattern(self) -> re.Pattern[str]:
        # API Gateway path parameters match one segment; {proxy+} matches the rest.
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


def routes() -> list[Route]:
    out = []
    for fn in functions().values():
        for name, event in fn.events.items():
            if event["Type"] == "Api":
                props = event["Properties"]
                out.append(Route(props["Method"].upper(), props["Path"], fn.logical_id, name))
    return out


def authorizer() -> tuple[str, dict[str, Any]]:
    """(function logical id, authorizer spec) of the API's default authorizer."""
    auth = resources("AWS::Serverless::Api")["Api"]["Properties"]["Auth"]
    spec = auth["Authorizers"][auth["DefaultAuthorizer"]]
    function_arn = spec["FunctionArn"]
    return function_arn["Fn::GetAtt"][0] if isinstance(function_arn["Fn::GetAtt"], list) else function_arn[
        "Fn::GetAtt"
    ].split(".")[0], spec
