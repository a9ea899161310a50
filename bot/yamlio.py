"""Reading request files: bytes in, plain JSON-like documents with the position of every node out.

This is Paved's one YAML loader. It drives libyaml's event parser (through PyYAML's C binding) and
builds the values itself, because that is where the speed and the exactness come from:

* libyaml's events cost ~33 ms per 1,000 small files; PyYAML's own constructors cost ten times that
  and ruamel.yaml's round-trip loader two hundred times, so bulk reading never goes through them;
* building values here lets Paved read YAML as YAML 1.2 does (``no``, ``off`` and ``y`` stay strings,
  ``010`` is ten, timestamps stay strings so JSON Schema formats apply), report duplicate keys instead
  of silently keeping the last one, and bound what aliases may expand to;
* every node's line and column is recorded under its JSON pointer on the way, so a finding can point
  at the offending key or value itself.

Problems never raise: each becomes a `Finding` with a position. Round-trip editing with comments
intact (``paved new``) uses ruamel.yaml, in `dump_request`.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.model import Finding

if TYPE_CHECKING:
    import yaml


def _pyyaml() -> Any:
    """PyYAML, imported when the first file is read: a `paved validate` answered from the index reads
    none, and its start-up is a speed target (bench/run.py)."""
    import yaml

    return yaml


def _parser(text: str) -> Any:
    """libyaml's bare parser over `text`: no constructor or resolver is needed, as `_build` does both."""
    parser: Any
    try:
        from yaml._yaml import CParser as parser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml: same events, slower
        from yaml.loader import BaseLoader as parser
    return parser(text)

MAX_FILE_BYTES = 1024 * 1024
# Enough for any honest request (a large one has a few hundred nodes), small enough that a
# "billion laughs" document is refused long before it costs memory or time.
MAX_NODES = 50_000
MAX_DEPTH = 64

Position = tuple[int, int]

_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset({_CORE + t for t in ("str", "int", "float", "bool", "null")})


@dataclass(slots=True)
class Document:
    """One YAML document of a file: its value and where each of its nodes stands.

    `values` maps a JSON pointer to the (line, column) of the node's value, `keys` maps the pointer
    of a mapping member to the position of its key, `collections` holds the pointers of mappings and
    sequences. Lines and columns are 1-based.
    """

    index: int
    data: Any
    line: int
    values: dict[str, Position] = field(default_factory=dict)
    keys: dict[str, Position] = field(default_factory=dict)
    collections: set[str] = field(default_factory=set)

    def position(self, pointer: str, *, prefer_key: bool = False) -> Position:
        """Where to point for `pointer`: the node itself, else its nearest ancestor that exists.

        A mapping or sequence value is reported at its key (``spec:``), which is where a person looks,
        not at its first child's line.
        """
        current = pointer
        while True:
            key = self.keys.get(current)
            value = self.values.get(current)
            if key is not None and (prefer_key or value is None or self._is_collection(current)):
                return key
            if value is not None:
                return value
            if not current:
                return (self.line, 1)
            current = current.rsplit("/", 1)[0]

    def _is_collection(self, pointer: str) -> bool:
        return pointer in self.collections


@dataclass(slots=True)
class LoadedFile:
    """The outcome of reading one file: its documents and the findings that reading raised.

    `broken` is True when the file could not be read to its end; its documents are then only those
    before the problem, and a plan must not read the missing ones as deletions.
    """

    path: str
    documents: list[Document]
    findings: list[Finding]
    broken: bool = False


def escape(token: str) -> str:
    if "~" not in token and "/" not in token:
        return token
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape(str(token))}"


def resolve_pointer(data: Any, pointer: str) -> Any:
    """The node at `pointer` in `data`, or None when there is none."""
    if not pointer:
        return data
    node = data
    for raw in pointer.split("/")[1:]:
        token = unescape(raw)
        if isinstance(node, dict):
            if token not in node:
                return None
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return None
            node = node[int(token)]
        else:
            return None
    return node


_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(_NULL, None), **dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
# A plain scalar can only be a number when it starts with one of these.
_NUMERIC_START = frozenset("0123456789+-.")


def resolve_plain(value: str) -> Any:
    """A plain scalar as the YAML 1.2 core schema reads it."""
    if value in _CONSTANTS:
        return _CONSTANTS[value]
    if value[0] not in _NUMERIC_START:
        return value
    if _INT.match(value):
        return int(value)
    if _OCT.match(value):
        return int(value[2:], 8)
    if _HEX.match(value):
        return int(value[2:], 16)
    if _FLOAT.match(value):
        return float(value)
    if _INF.match(value):
        return -math.inf if value.startswith("-") else math.inf
    if _NAN.match(value):
        return math.nan
    return value


class _Problem(Exception):
    """Raised inside the builder to abandon the current file with one finding."""

    def __init__(self, line: int, column: int, message: str, rule: str, hint: str | None = None,
                 pointer: str = "") -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.rule, self.hint = line, column, message, rule, hint
        self.pointer = pointer


def _tagged_scalar(tag: str, value: str, line: int, column: int) -> Any:
    if tag == _CORE + "str":
        return value
    resolved = resolve_plain(value)
    expected = {
        _CORE + "int": int,
        _CORE + "float": float,
        _CORE + "bool": bool,
        _CORE + "null": type(None),
    }[tag]
    if expected is float and isinstance(resolved, int) and not isinstance(resolved, bool):
        return float(resolved)
    if type(resolved) is not expected:
        raise _Problem(line, column, f"{value!r} is not a valid {tag.rsplit(':', 1)[1]}", "yaml.tag")
    return resolved


_COLLECTION_TAGS = frozenset({None, "!", _CORE + "map", _CORE + "seq"})
# The keys a request opens with: met twice at the top of one document, they start a second request.
_REQUEST_START = frozenset({"apiVersion", "kind"})


def _missing_separator(findings: list[Finding], repeated: list[Finding]) -> None:
    """Abandon a document whose top-level keys start over: two requests without the `---` between them.

    Every repeated key would otherwise be a finding of its own; one finding says what happened, at the line
    where the second request seems to start (its first repeated key).
    """
    start = min(repeated, key=lambda f: (f.line, f.column))
    findings[:] = [f for f in findings if not any(f is r for r in repeated)]
    raise _Problem(start.line, start.column,
                   f"a second request seems to start on line {start.line}, in the same YAML document as the "
                   "first: the `---` that separates them is probably missing",
                   "yaml.missing-separator",
                   f"Put a line holding only `---` just above line {start.line}, so that YAML reads two requests "
                   "instead of one whose fields are given twice.",
                   pointer=start.pointer)


def _build(parser: Any, path: str, documents: list[Document], findings: list[Finding]) -> None:
    """Consume the event stream of one file into `documents` and per-document `findings`.

    Documents completed before a problem stay in `documents` when this raises. This loop is the hot
    path of validating a large catalogue, hence the flat structure and local names.
    """
    events = _pyyaml()
    _Scalar, _Alias = events.ScalarEvent, events.AliasEvent
    _MapStart, _MapEnd = events.MappingStartEvent, events.MappingEndEvent
    _SeqStart, _SeqEnd = events.SequenceStartEvent, events.SequenceEndEvent
    stream_end, document_start, document_end = events.StreamEndEvent, events.DocumentStartEvent, events.DocumentEndEvent
    index = -1
    get_event = parser.get_event
    while True:
        event = get_event()
        kind = type(event)
        if kind is stream_end:
            return
        if kind is not document_start:
            continue
        index += 1
        doc_line = event.start_mark.line + 1
        document = Document(index=index, data=None, line=doc_line)
        values, keys, collections = document.values, document.keys, document.collections
        anchors: dict[str, tuple[Any, int]] = {}
        repeated_at_root: list[Finding] = []  # duplicate top-level keys: a missing `---`, when they start a request
        # A frame: [container, its pointer, is a mapping, pending key, node count at start, anchor,
        # the pending key's pointer]
        stack: list[list[Any]] = []
        top: list[Any] | None = None
        nodes = 0
        root: Any = None
        while True:
            event = get_event()
            kind = type(event)
            if kind is document_end:
                break
            if kind is _MapEnd or kind is _SeqEnd:
                frame = stack.pop()
                value = frame[0]
                if frame[5]:
                    anchors[frame[5]] = (value, nodes - frame[4])
                top = stack[-1] if stack else None
            else:
                mark = event.start_mark
                line, column = mark.line + 1, mark.column + 1
                if top is None:
                    pointer = ""
                elif top[2]:
                    if top[3] is None:  # this node is a key
                        if kind is not _Scalar:
                            raise _Problem(line, column, "a mapping key must be a plain value, not a collection",
                                           "yaml.key", "Write the key as a string.")
                        key = event.value
                        pointer = f"{top[1]}/{escape(key) if '~' in key or '/' in key else key}"
                        if key in top[0]:
                            duplicate = Finding(
                                path=path, line=line, column=column, pointer=pointer,
                                message=f"duplicate key {key!r} (first defined on line {keys[pointer][0]})",
                                severity="error", rule="yaml.duplicate-key", document=index,
                                hint="YAML keeps only one of the two; remove or merge one of them.",
                            )
                            findings.append(duplicate)
                            if len(stack) == 1:
                                repeated_at_root.append(duplicate)
                                if key in _REQUEST_START:
                                    _missing_separator(findings, repeated_at_root)
                        top[3] = key
                        top[6] = pointer  # the value's pointer, made once
                        keys[pointer] = (line, column)
                        continue
                    pointer = top[6]
                else:
                    pointer = f"{top[1]}/{len(top[0])}"
                values[pointer] = (line, column)

                if kind is _Scalar:
                    nodes += 1
                    tag = event.tag
                    if tag is None:
                        value = resolve_plain(event.value) if event.implicit[0] else event.value
                    elif tag == "!":
                        value = event.value
                    elif tag in _SCALAR_TAGS:
                        value = _tagged_scalar(tag, event.value, line, column)
                    else:
                        raise _Problem(line, column, f"unsupported tag {tag}", "yaml.tag",
                                       "Requests are plain data; remove the tag.")
                    if event.anchor:
                        anchors[event.anchor] = (value, 1)
                elif kind is _MapStart or kind is _SeqStart:
                    if event.tag not in _COLLECTION_TAGS:
                        raise _Problem(line, column, f"unsupported tag {event.tag}", "yaml.tag",
                                       "Requests are plain data; remove the tag.")
                    if len(stack) >= MAX_DEPTH:
                        raise _Problem(line, column, f"nesting deeper than {MAX_DEPTH} levels", "yaml.depth")
                    is_map = kind is _MapStart
                    collections.add(pointer)
                    top = [{} if is_map else [], pointer, is_map, None, nodes, event.anchor, ""]
                    stack.append(top)
                    nodes += 1
                    continue
                elif kind is _Alias:
                    if event.anchor not in anchors:
                        raise _Problem(line, column, f"alias *{event.anchor} refers to no complete anchor",
                                       "yaml.alias", "Define the anchor (&name) before, and outside of, its use.")
                    value, size = anchors[event.anchor]
                    nodes += size
                    if nodes > MAX_NODES:
                        raise _Problem(line, column, f"document expands to more than {MAX_NODES:,} nodes",
                                       "yaml.alias-bomb",
                                       "Aliases (*name) that repeat large anchors multiply; write the values out.")
                else:  # pragma: no cover - libyaml emits no other events inside a document
                    continue

            if top is None:
                root = value
            elif top[2]:
                top[0][top[3]] = value
                top[3] = None
            else:
                top[0].append(value)
        document.data = root
        document.line = values.get("", (doc_line, 1))[0]
        documents.append(document)


def _decode(path: str, raw: bytes) -> tuple[str | None, Finding | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        return None, Finding(
            path=path, line=line, column=column, pointer="", severity="error", rule="yaml.encoding",
            message=f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            hint="Save the file as UTF-8.",
        )
    return text.removeprefix("\ufeff"), None


_LONGEST_KEY_LINE = 400
_KEY_LINE = re.compile(r"(?P<indent> *)(?P<dash>- +)?(?P<key>[^\s:#'\"][^:#]*?) *:(?: +(?P<value>.*?))? *$")


def _key_line(source: str) -> re.Match[str] | None:
    """`_KEY_LINE` on the start of a line: a longer line is no field a person wrote by hand, and the
    pattern's cost grows with the square of what it reads."""
    return _KEY_LINE.match(source[:_LONGEST_KEY_LINE])


def _indent(source: str) -> int:
    return len(source) - len(source.lstrip(" "))


def _content(source: str) -> bool:
    """Whether a line holds YAML content (not blank, not only a comment)."""
    stripped = source.strip()
    return bool(stripped) and not stripped.startswith("#")


def _spaces(n: int) -> str:
    return f"{n} space" if n == 1 else f"{n} spaces"


def _by(n: int) -> str:
    return f"by {_spaces(n)}" if n else "not at all"


def _what(source: str, at: int) -> str:
    """How to name the node that starts at column `at` (0-based) of a line: `key:`, or the item `- value`."""
    text = source[at:].rstrip()
    shown = text if len(text) <= 30 else text[:29] + "…"
    if text.startswith("-"):
        return f"the item `{shown}`"
    match = _key_line(text)
    return f"`{match.group('key')}:`" if match else f"`{shown}`"


def _starts(source: str) -> int:
    """Where a line's field starts: after the dash of a list item that holds a mapping (`- name: a`)."""
    dash = re.match(r" *- +", source)
    return dash.end() if dash and _key_line(source) else _indent(source)


def _levels(lines: list[str], line: int) -> list[tuple[int, str]]:
    """What lines up where above line `line` (1-based): (indentation, how to name it), innermost first.

    Walking up, each line less indented than everything below it is an enclosing level, and a list item
    (`- key: value`) opens two: the dash and the key after it. A `---` ends the walk: it starts the document.
    """
    found: list[tuple[int, str]] = []
    limit = 1 << 30
    for source in reversed(lines[:line - 1]):
        if source.startswith("---") or source.startswith("..."):
            break
        if not _content(source):
            continue
        indent, inner = _indent(source), _starts(source)
        if indent < inner < limit:
            found.append((inner, _what(source, inner)))
        if indent < limit:
            found.append((indent, _what(source, indent)))
            limit = indent
        if indent == 0:
            break
    return found


def _misaligned(lines: list[str], line: int) -> tuple[str, str | None] | None:
    """A line indented to no level above it: which levels it could line up with."""
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    here = _indent(source)
    levels = _levels(lines, line)
    deeper = [lv for lv in levels if lv[0] > here]
    shallower = [lv for lv in levels if lv[0] < here]
    options = ([min(deeper)] if deeper else []) + ([max(shallower)] if shallower else [])
    if not options:
        return None
    named = _what(source, here)
    message = f"line {line} is indented {_by(here)}, which lines up with nothing above it"
    choices = ", or ".join(f"{_by(n)} like {what}" for n, what in options)
    return message, f"Indent {named} like the line it belongs with: {choices}."


def _explained(problem: str, context: str, line: int, context_line: int,
               lines: list[str]) -> tuple[str, str | None, int] | None:
    """libyaml's complaint in a person's words, with the line it is about; None when it is none of these."""
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if problem.startswith("mapping values are not allowed"):
        match = _key_line(source)
        if match and match.group("value") and ": " in f"{match.group('value')} ":
            key, value = match.group("key"), match.group("value")
            quoted = f"'{value}'" if '"' in value else f'"{value}"'
            whole = len(source) <= _LONGEST_KEY_LINE
            return (f"the value of `{key}` on line {line} holds `: `, which YAML reads as the start of another "
                    f"field", f"Quote the value: `{key}: {quoted}`." if whole else "Quote the value.", line)
        above = next((n for n in range(line - 1, 0, -1) if _content(lines[n - 1])), 0)
        here, there = _indent(source), _starts(lines[above - 1]) if above else 0
        if above and here > there:
            move = f"Indent {_what(source, here)} {_by(there)}" if there else f"Start {_what(source, here)} at the " \
                "beginning of the line"
            return (f"line {line} is indented more than line {above} above it ({_spaces(here)} against {there}), so "
                    f"YAML reads it as more of line {above}'s value",
                    f"{move}, like {_what(lines[above - 1], there)} above it, if it is a field beside it.", line)
        return None
    if problem.startswith(("did not find expected key", "did not find expected '-' indicator")):
        found = _misaligned(lines, line)
        return (found[0], found[1], line) if found else None
    if problem.startswith("could not find expected ':'") and context_line:
        text = lines[context_line - 1].strip() if context_line <= len(lines) else ""
        key, _, rest = text.partition(" ")
        hint = f"Write `{key}: {rest.strip()}`." if rest.strip() else "Add `:` after the key, or remove the line."
        return f"line {context_line} has no `:` after `{text}`: a field is written `key: value`", hint, context_line
    if problem.startswith("did not find expected ',' or") and "flow" in context and context_line:
        closing = problem[-2]
        opening = {"}": "{", "]": "["}.get(closing, "")
        return (f"the `{opening}` on line {context_line} is not closed with `{closing}`, or an item in it lacks "
                "the `,` after it", f"Close it with `{closing}`, or write it in block style, one item per line.",
                line)
    if problem.startswith("found unexpected end of stream") and "quoted scalar" in context and context_line:
        return (f"the quoted value that starts on line {context_line} is never closed",
                "Add the closing quote at the end of the value.", context_line)
    return None


def _syntax_finding(path: str, text: str, exc: yaml.MarkedYAMLError) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    column = mark.column + 1 if mark else 0
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    hint = None
    if exc.context:
        message += f" ({exc.context}"
        if exc.context_mark and exc.context_mark is not mark:
            message += f" on line {exc.context_mark.line + 1}"
        message += ")"
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in problem or "\t" in source[: len(source) - len(source.lstrip())]:
        tab_at = source.find("\t")
        if tab_at >= 0:
            column = tab_at + 1
        message = "a tab character is used for indentation"
        hint = "YAML indents with spaces only; replace the tab with spaces."
        return Finding(path=path, line=line, column=column, pointer="", severity="error",
                       rule="yaml.tab", message=message, hint=hint)
    context_line = exc.context_mark.line + 1 if exc.context_mark else 0
    explained = _explained(problem, exc.context or "", line, context_line, lines)
    if explained is not None:
        message, hint, at = explained
        if at != line:
            line, source = at, lines[at - 1] if 0 < at <= len(lines) else ""
        column = _indent(source) + 1
    return Finding(path=path, line=line, column=column, pointer="", severity="error",
                   rule="yaml.syntax", message=message, hint=hint)


def load(path: str, raw: bytes, *, max_bytes: int = MAX_FILE_BYTES) -> LoadedFile:
    """Read one file's bytes into documents, turning every problem into a finding."""
    if len(raw) > max_bytes:
        return LoadedFile(path, [], [Finding(
            path=path, line=0, column=0, pointer="", severity="error", rule="yaml.size",
            message=f"the file is {len(raw):,} bytes, over the limit of {max_bytes:,}",
            hint="Split the requests over several files.",
        )], broken=True)
    text, problem = _decode(path, raw)
    if problem is not None or text is None:
        return LoadedFile(path, [], [problem] if problem else [], broken=True)
    yaml = _pyyaml()
    parser = _parser(text)
    documents: list[Document] = []
    findings: list[Finding] = []
    broken = False
    try:
        _build(parser, path, documents, findings)
    except _Problem as problem_:
        findings.append(Finding(path=path, line=problem_.line, column=problem_.column, pointer=problem_.pointer,
                                severity="error", rule=problem_.rule, message=problem_.message,
                                hint=problem_.hint, document=len(documents)))
        broken = True
    except yaml.MarkedYAMLError as exc:
        findings.append(_syntax_finding(path, text, exc))
        broken = True
    except yaml.YAMLError as exc:
        findings.append(Finding(path=path, line=0, column=0, pointer="", severity="error",
                                rule="yaml.syntax", message=f"YAML syntax error: {exc}"))
        broken = True
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()
    return LoadedFile(path, documents, findings, broken)


def dump_request(data: dict[str, Any], *, schema_comment: str | None = None) -> str:
    """Write a request as a person would: block style, key order kept, an editor schema line on top.

    ruamel.yaml is used here (and only here) because it writes YAML 1.2 and keeps comments.
    """
    from ruamel.yaml import YAML  # deferred: costs ~0.1 s to import and only `paved new` writes

    writer = YAML()
    writer.default_flow_style = False
    writer.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    if schema_comment:
        buffer.write(f"# yaml-language-server: $schema={schema_comment}\n")
    writer.dump(data, buffer)
    return buffer.getvalue()
