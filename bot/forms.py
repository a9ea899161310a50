"""From a kind's JSON Schema to a web form, from the form's answers back to a request, and from findings to
the fields they are about.

The catalogue's request form (`bot/web/request_form.py`) is built here, purely, from the kind's schema in
the platform repo, so a new field or enum in `schemas/kinds/` reaches the form with no change to Paved:

- a string is a text box (a long one, `maxLength` over 200, a text area); an `enum` or a list of types that
  `oneOf` nothing else is a select; a boolean a checkbox; an integer or number a number box; a list of
  strings a text area of one item a line (a list whose items are an `enum`, a set of checkboxes); a map of
  scalars (`additionalProperties` with no `properties`: labels, template parameters) a text area of
  `key=value` lines; an object with `properties` a fieldset of its own fields. `const` fields (`apiVersion`,
  `kind`) are no fields: the request always carries them.
- a field's title is its label, its description its help text, its first example the placeholder and its
  default the starting value; required fields are marked.
- the owner field (the kind's `x-paved.owner`) is a select of the catalogue's teams.

`request_data` turns what a browser sent back (text only, hostile) into the request's data: values are only
ever data (a value holding newlines or YAML syntax stays that one string when the data is dumped), in the
schema's order. A required field left empty stays an empty value, so that validation names that field
rather than its parent. A number that does not read as one stays text, and validation says so at its field.

`place_findings` files each `Finding` of the new file under the field its JSON pointer is in (an item of a
list, or a key of a map, under the list or the map); a finding about the request as a whole, or a field the
form does not show, is the form's own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.model import Finding
from bot.validate import deref
from bot.yamlio import join

Widget = Literal["text", "textarea", "select", "checkbox", "checkboxes", "number", "lines", "map", "fieldset"]
LONG_TEXT = 200  # a string allowed more characters than this gets a text area
# How the form marks the empty choice of a select and the owner of a team that owns itself.
ITSELF = ""


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a select: the text sent back and the text shown."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of the form, named by the JSON pointer of the request field it fills in."""

    pointer: str
    label: str
    widget: Widget
    required: bool = False
    help: str = ""
    placeholder: str = ""
    value: str = ""  # the starting text (the default), or "true" for a ticked checkbox
    options: tuple[Option, ...] = ()
    children: tuple[FormField, ...] = ()
    kind: Literal["string", "integer", "number", "boolean", "any"] = "string"  # what a value is read as
    item_kind: Literal["string", "integer", "number", "boolean", "any"] = "string"  # for lists and maps

    @property
    def id(self) -> str:
        """The HTML id: the pointer's tokens joined by `-` (pointers hold only the schema's own names)."""
        return "field" + "".join(c if c.isalnum() else "-" for c in self.pointer)

    @property
    def name(self) -> str:
        """The name the browser sends the value under: the pointer itself."""
        return self.pointer

    def walk(self) -> Iterator[FormField]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class Form:
    """The form for one kind: its fields in the schema's order, and the constant fields every request has."""

    kind: str
    title: str
    description: str
    fields: tuple[FormField, ...]
    constants: tuple[tuple[str, Any], ...]  # (top-level key, value): `apiVersion`, `kind`
    owner: str  # the pointer of the owner field
    name: str = "/metadata/name"
    is_team: bool = False

    def all_fields(self) -> Iterator[FormField]:
        for top in self.fields:
            yield from top.walk()

    def field(self, pointer: str) -> FormField | None:
        return next((f for f in self.all_fields() if f.pointer == pointer), None)


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, list):
        return [str(t) for t in declared]
    return [str(declared)] if isinstance(declared, str) else []


def _kind_of(schema: Mapping[str, Any]) -> Literal["string", "integer", "number", "boolean", "any"]:
    types = _types(schema)
    if len(types) == 1 and types[0] in ("string", "integer", "number", "boolean"):
        return types[0]  # type: ignore[return-value]
    if not types and "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "string"
    return "any"


def as_text(value: Any) -> str:
    """A schema's default, example or enum value as a form shows it (`true`, `14`, `small`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={as_text(v)}" for k, v in value.items())
    return str(value)


def _help(schema: Mapping[str, Any]) -> str:
    return str(schema.get("description") or "")


def _placeholder(schema: Mapping[str, Any]) -> str:
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and not isinstance(examples[0], dict):
        return as_text(examples[0])
    return ""


def _field(root: dict[str, Any], raw: Any, pointer: str, key: str, required: bool, teams: Sequence[str] | None,
           owner_is_itself: bool) -> FormField | None:
    schema = deref(root, raw)
    if not isinstance(schema, dict) or "const" in schema:
        return None
    label = str(schema.get("title") or key)
    common: dict[str, Any] = {"pointer": pointer, "label": label, "required": required, "help": _help(schema),
                              "placeholder": _placeholder(schema), "kind": _kind_of(schema)}
    default = schema.get("default")
    if teams is not None:
        options = [Option(t, t) for t in teams]
        if owner_is_itself:
            options.insert(0, Option(ITSELF, "this team itself (a top-level team)"))
        elif not required:
            options.insert(0, Option("", "—"))
        return FormField(**{**common, "kind": "string"}, widget="select", options=tuple(options))
    if "enum" in schema:
        choices = [Option(as_text(v), as_text(v)) for v in schema["enum"]]
        if default is None:
            choices.insert(0, Option("", "choose one" if required else "—"))
        return FormField(**common, widget="select", options=tuple(choices), value=as_text(default))
    types = _types(schema)
    if types == ["boolean"]:
        return FormField(**common, widget="checkbox", value="true" if default is True else "")
    if types in (["integer"], ["number"]):
        return FormField(**common, widget="number", value=as_text(default))
    if types == ["array"]:
        items = deref(root, schema.get("items"))
        items = items if isinstance(items, dict) else {}
        if isinstance(items.get("enum"), list):
            return FormField(**common, widget="checkboxes", item_kind=_kind_of(items),
                             options=tuple(Option(as_text(v), as_text(v)) for v in items["enum"]),
                             value=as_text(default))
        if "properties" in items or _types(items) in (["object"], ["array"]):
            return None  # a list of objects has no form field yet: the form says to edit the file for it
        return FormField(**{**common, "placeholder": common["placeholder"] or _placeholder(items),
                            "help": common["help"] or _help(items)},
                         widget="lines", item_kind=_kind_of(items), value=as_text(default))
    if types == ["object"] or "properties" in schema:
        if isinstance(schema.get("properties"), dict):
            needed = set(schema.get("required") or [])
            children = [f for name, sub in schema["properties"].items()
                        if (f := _field(root, sub, join(pointer, name), name, name in needed, None, False))]
            return FormField(**common, widget="fieldset", children=tuple(children))
        values = deref(root, schema.get("additionalProperties"))
        if isinstance(values, dict):
            return FormField(**common, widget="map", item_kind=_kind_of(values), value=as_text(default))
        return None
    long = isinstance(schema.get("maxLength"), int) and schema["maxLength"] > LONG_TEXT
    return FormField(**common, widget="textarea" if long else "text", value=as_text(default))


def form_for(schema: dict[str, Any], *, owner: str, teams: Sequence[str], is_team: bool = False) -> Form:
    """The form for the kind `schema` describes; `owner` is the pointer of its owner field (a select of
    `teams`; for a team kind, also "this team itself")."""
    required = set(schema.get("required") or [])
    top: list[FormField] = []
    constants: list[tuple[str, Any]] = []

    def build(raw: Any, pointer: str, key: str, needed: bool) -> FormField | None:
        sub = deref(schema, raw)
        if pointer == owner:
            return _field(schema, raw, pointer, key, needed, teams, is_team)
        if isinstance(sub, dict) and isinstance(sub.get("properties"), dict) and owner.startswith(pointer + "/"):
            # The owner is inside this object (`/metadata/owner`): build its children here to find it.
            inner = set(sub.get("required") or [])
            children = [f for name, child in sub["properties"].items()
                        if (f := build(child, join(pointer, name), name, name in inner))]
            return FormField(pointer=pointer, label=str(sub.get("title") or key), widget="fieldset",
                             required=needed, help=_help(sub), children=tuple(children))
        return _field(schema, raw, pointer, key, needed, None, False)

    for key, raw in (schema.get("properties") or {}).items():
        sub = deref(schema, raw)
        if isinstance(sub, dict) and "const" in sub:
            constants.append((key, sub["const"]))
            continue
        found = build(raw, join("", key), key, key in required)
        if found is not None:
            top.append(found)
    kind = next((str(v) for k, v in constants if k == "kind"), str(schema.get("title") or ""))
    return Form(kind, str(schema.get("title") or kind), _help(schema), tuple(top), tuple(constants), owner,
                is_team=is_team)


# -- the answers, back to a request -----------------------------------------------------------------------------

def _scalar(text: str, kind: str) -> Any:
    """A value typed into a box, read as the field's type when it reads as one, else kept as the text."""
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            return text
    if kind == "number":
        try:
            number = float(text.strip())
        except ValueError:
            return text
        if not math.isfinite(number):
            return text
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if kind == "any":
        # A field taking several types (a template parameter): whole numbers and true/false are read as such;
        # anything else stays the text it is.
        stripped = text.strip()
        if stripped in ("true", "false"):
            return stripped == "true"
        if stripped.lstrip("-").isdigit() and len(stripped) < 16:
            return int(stripped)
        return text
    return text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]


def _value(f: FormField, answers: Mapping[str, Sequence[str]]) -> tuple[bool, Any]:
    """(whether the request carries the field, its value)."""
    sent = list(answers.get(f.pointer) or [])
    text = sent[0] if sent else ""
    if f.widget == "checkbox":
        ticked = text == "true"
        default = f.value == "true"
        return (f.required or ticked != default or ticked), ticked
    if f.widget == "checkboxes":
        chosen = [v for v in sent if v in {o.value for o in f.options}]
        values = [_scalar(v, f.item_kind) for v in chosen]
        return (f.required or bool(values)), values
    if f.widget == "lines":
        items = [_scalar(line, f.item_kind) for line in _lines(text)]
        return (f.required or bool(items)), items
    if f.widget == "map":
        pairs: dict[str, Any] = {}
        for line in _lines(text):
            key, equals, rest = line.partition("=")
            # A line with no `=` is a key with an empty value, which validation then names.
            pairs[key.strip()] = _scalar(rest.strip() if equals else "", f.item_kind)
        return (f.required or bool(pairs)), pairs
    if text.strip() == "":
        return f.required, ""
    if f.kind == "string":
        # Text stays the text typed (ends trimmed, line breaks as \n): data, dumped as a string whatever it holds.
        return True, text.replace("\r\n", "\n").strip()
    return True, _scalar(text, f.kind)


def _default(f: FormField) -> Any:
    """The value a field's default makes, read as the field reads what is sent."""
    sent = f.value.split("\n") if f.widget == "checkboxes" else [f.value]
    return _value(f, {f.pointer: sent})[1]


def _object(fields: Iterable[FormField], answers: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        key = f.pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        if f.widget == "fieldset":
            inner = _object(f.children, answers)
            if inner or f.required:
                out[key] = inner
            continue
        carried, value = _value(f, answers)
        if carried and not f.required and f.value and value == _default(f):
            carried = False  # an optional field left at its default is left out, as a person writes a request
        if carried:
            out[key] = value
    return out


def request_data(form: Form, answers: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The request the answers make: constants first, then each field the form has, in the schema's order.

    `answers` maps a field's name (its pointer) to the values the browser sent for it. A team's owner left
    as "itself" is the team's own name.
    """
    data: dict[str, Any] = dict(form.constants)
    data.update(_object(form.fields, answers))
    if form.is_team:
        owner = _at(data, form.owner)
        if owner == ITSELF:
            name = _at(data, form.name)
            _put(data, form.owner, name if isinstance(name, str) else "")
    return data


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _at(data: Any, pointer: str) -> Any:
    for token in _tokens(pointer):
        if not isinstance(data, dict) or token not in data:
            return None
        data = data[token]
    return data


def _put(data: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = _tokens(pointer)
    for token in parents:
        data = data.setdefault(token, {})
    data[last] = value


def answers_of(form: Form, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """What the form shows for a request: each field's text, as a browser would send it back."""
    out: dict[str, list[str]] = {}
    for f in form.all_fields():
        if f.widget == "fieldset":
            continue
        value = _at(data, f.pointer)
        if value is None:
            continue
        if f.widget == "checkboxes" and isinstance(value, list):
            out[f.pointer] = [as_text(v) for v in value]
        elif f.widget == "checkbox":
            out[f.pointer] = ["true"] if value is True else []
        else:
            out[f.pointer] = [as_text(value)]
    if form.is_team and _at(data, form.owner) == _at(data, form.name):
        out[form.owner] = [ITSELF]
    return out


# -- findings, at their fields ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Placed:
    """A request's findings by the field they are about, and those about the request as a whole."""

    by_field: Mapping[str, tuple[Finding, ...]]
    general: tuple[Finding, ...]

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for found in (*self.by_field.values(), self.general) for f in found)


def field_of(form: Form, pointer: str) -> str | None:
    """The pointer of the form field a finding's JSON pointer is in: the field itself, or the list, map or
    object holding it; None when no field of the form holds it."""
    known = {f.pointer for f in form.all_fields()}
    tokens = pointer.split("/")
    while len(tokens) > 1:
        candidate = "/".join(tokens)
        if candidate in known:
            return candidate
        tokens.pop()
    return None


def place_findings(form: Form, findings: Iterable[Finding]) -> Placed:
    """`findings` (of the new file only) filed under the fields their pointers name."""
    by_field: dict[str, list[Finding]] = {}
    general: list[Finding] = []
    for finding in findings:
        target = field_of(form, finding.pointer)
        if target is None:
            general.append(finding)
        else:
            by_field.setdefault(target, []).append(finding)
    return Placed({k: tuple(v) for k, v in by_field.items()}, tuple(general))
