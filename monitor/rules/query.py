"""The query language: lexer and parser from text to an abstract syntax tree.

Pure. Grammar, loosest binding first (NOT > NEAR > AND > OR)::

    or     := and ("OR" and)*
    and    := near (("AND" | "AND NOT" | "NOT") near)*
    near   := unary ("NEAR/n" | "NEAR/nf") unary)*
    unary  := "NOT" unary | primary
    primary:= "(" or ")" | FIELD ":" primary | "sentence:" primary | "sentence/n:" primary
            | word | word* | "phrase"
            | @entity | $clause | /regex/ | feed:name | tag:name

Operators are upper case; ``and``, ``or``, ``near`` are ordinary words. Every
error is a QueryError with the 1-based column where the problem starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.errors import QueryError, did_you_mean
from monitor.text import query_tokens
from monitor.types import FIELDS

MAX_NEAR = 100
MAX_SENTENCES = 3  # sentence/n:( ): a window of at most this many sentences
_SENTENCE_RE = re.compile(r"^sentence/(\d+)$")
_NEAR_RE = re.compile(r"^NEAR/(\d+)(f?)$")
_ENTITY_RE = re.compile(r"@([a-z0-9][a-z0-9-]*)")
_REF_RE = re.compile(r"\$([a-z0-9][a-z0-9-]*)")
_META_VALUE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_WORD_END = set(' \t\r\n()"')


# --- syntax tree ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Word:
    """One token; ``prefix`` for ``word*``."""

    token: str
    prefix: bool
    column: int


@dataclass(frozen=True)
class Phrase:
    """Consecutive tokens (a quoted phrase, or a word that normalises to several tokens)."""

    words: tuple[Word, ...]
    text: str
    column: int


@dataclass(frozen=True)
class EntityRef:
    name: str
    column: int


@dataclass(frozen=True)
class Regex:
    pattern: str
    column: int


@dataclass(frozen=True)
class Meta:
    """``feed:name`` or ``tag:name``: a property of the document, not of its text."""

    kind: str
    value: str
    column: int


@dataclass(frozen=True)
class Not:
    child: Node
    column: int


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    distance: int
    ordered: bool
    column: int


@dataclass(frozen=True)
class Scope:
    """``title:(…)``: the child is evaluated on the named field only."""

    field: str
    child: Node
    column: int


@dataclass(frozen=True)
class Sentence:
    """``sentence:(…)``: the child holds in one sentence, read alone (NOT inside it included);
    ``sentence/n:(…)``: in a window of ``size`` consecutive sentences of one field, read alone."""

    child: Node
    column: int
    size: int = 1


@dataclass(frozen=True)
class Ref:
    """``$name`` as parsed: a named clause not looked up yet (the loader resolves it)."""

    name: str
    column: int


@dataclass(frozen=True)
class Clause:
    """``$name`` resolved: the definition's tree, shared by every use of the name."""

    name: str
    body: Node
    column: int


Node = Word | Phrase | EntityRef | Regex | Meta | Not | And | Or | Near | Scope | Sentence | Ref | Clause


def is_positional(node: Node) -> bool:
    """Whether the node has token positions, so NEAR can take it (an unresolved ``$name`` may)."""
    if isinstance(node, Word | Phrase | EntityRef | Near | Ref):
        return True
    if isinstance(node, Clause):
        return is_positional(node.body)
    if isinstance(node, Or):
        return all(is_positional(child) for child in node.children)
    return False


# --- lexer ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # LPAREN RPAREN AND OR NOT NEAR FIELD SENTENCE TERM
    text: str
    column: int
    node: Node | None = None
    distance: int = 0
    ordered: bool = False


def _term_from_word(word: str, column: int) -> Node:
    prefix = word.endswith("*")
    body = word[:-1] if prefix else word
    if "*" in body:
        raise QueryError(column, f"'*' may only end a word: {word!r}",
                         "use it for prefixes, as in violat*")
    parts = query_tokens(body)
    if not parts:
        raise QueryError(column, f"{word!r} has no letters or digits to match")
    if prefix and len(parts[-1]) < 3:
        raise QueryError(column, f"{word!r}: a wildcard needs at least 3 letters before '*'")
    words = tuple(Word(p, prefix and i == len(parts) - 1, column) for i, p in enumerate(parts))
    if len(words) == 1:
        return words[0]
    return Phrase(words, word, column)


def phrase(text: str, column: int = 1) -> Word | Phrase:
    """A phrase of words as written inside quotes or as a gazetteer alias."""
    words: list[Word] = []
    for raw in text.split():
        node = _term_from_word(raw, column)
        words.extend(node.words if isinstance(node, Phrase) else [node])  # type: ignore[list-item]
    if not words:
        raise QueryError(column, "empty phrase \"\"")
    if len(words) == 1:
        return words[0]
    return Phrase(tuple(words), text, column)


def _word_token(word: str, column: int) -> list[Token]:
    if word in ("AND", "OR", "NOT"):
        return [Token(word, word, column)]
    near = _NEAR_RE.match(word)
    if near:
        distance = int(near.group(1))
        if not 1 <= distance <= MAX_NEAR:
            raise QueryError(column, f"NEAR distance must be 1 to {MAX_NEAR}, not {distance}")
        return [Token("NEAR", word, column, distance=distance, ordered=bool(near.group(2)))]
    if word.startswith("NEAR"):
        raise QueryError(column, f"malformed proximity operator {word!r}",
                         "write NEAR/5 (either order) or NEAR/5f (left before right)")
    name, colon, rest = word.partition(":")
    if colon and (name in FIELDS or name == "sentence" or name.startswith("sentence/")):
        tokens = [_scope_token(name, column)]
        if rest:
            tokens.extend(_word_token(rest, column + len(name) + 1))
        return tokens
    if colon and name in ("feed", "tag"):
        if not _META_VALUE_RE.match(rest):
            raise QueryError(column, f"{name}: needs a name, as in {name}:nato-news")
        return [Token("TERM", word, column, node=Meta(name, rest, column))]
    return [Token("TERM", word, column, node=_term_from_word(word, column))]


def _scope_token(name: str, column: int) -> Token:
    """The token of ``title:``, ``summary:``, ``content:``, ``sentence:`` or ``sentence/n:``
    (its window size n as the token's distance)."""
    if name in FIELDS:
        return Token("FIELD", name, column)
    window = _SENTENCE_RE.match(name)
    if name != "sentence" and not window:
        raise QueryError(column, f"malformed sentence window {name + ':'!r}",
                         "write sentence/2:( … ) for two consecutive sentences")
    size = int(window.group(1)) if window else 1
    if not 1 <= size <= MAX_SENTENCES:
        raise QueryError(column, f"a sentence window must be 1 to {MAX_SENTENCES} sentences, not {size}",
                         "write sentence/2:( … ) for two consecutive sentences")
    return Token("SENTENCE", name, column, distance=size)


def _read_until(query: str, start: int, closer: str, what: str) -> int:
    end = query.find(closer, start + 1)
    while end != -1 and closer == "/" and query[end - 1] == "\\":
        end = query.find(closer, end + 1)
    if end == -1:
        raise QueryError(start + 1, f"unterminated {what}", f"close it with {closer}")
    return end


def lex(query: str) -> list[Token]:
    """Split a query into tokens; columns are 1-based."""
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        char = query[i]
        column = i + 1
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(Token("LPAREN" if char == "(" else "RPAREN", char, column))
            i += 1
        elif char == '"':
            end = _read_until(query, i, '"', "phrase")
            tokens.append(Token("TERM", query[i:end + 1], column,
                                node=phrase(query[i + 1:end], column)))
            i = end + 1
        elif char == "/":
            end = _read_until(query, i, "/", "regular expression")
            pattern = query[i + 1:end].replace("\\/", "/")
            if not pattern:
                raise QueryError(column, "empty regular expression //")
            tokens.append(Token("TERM", query[i:end + 1], column, node=Regex(pattern, column)))
            i = end + 1
        elif char == "@":
            match = _ENTITY_RE.match(query, i)
            if not match:
                raise QueryError(column, "expected an entity name after '@'",
                                 "entity ids are lower case letters, digits and '-'")
            tokens.append(Token("TERM", match.group(0), column,
                                node=EntityRef(match.group(1), column)))
            i = match.end()
        elif char == "$":
            match = _REF_RE.match(query, i)
            if not match:
                raise QueryError(column, "expected a clause name after '$'",
                                 "clause names are lower case letters, digits and '-', as in $downed-drone")
            tokens.append(Token("TERM", match.group(0), column, node=Ref(match.group(1), column)))
            i = match.end()
        else:
            end = i
            while end < len(query) and query[end] not in _WORD_END:
                end += 1
            tokens.extend(_word_token(query[i:end], column))
            i = end
    return tokens


# --- parser --------------------------------------------------------------------------------

def _unknown_field(word: str) -> str:
    """The name of ``word`` when it is written as a field scope (``titel:``), else ""."""
    name, colon, rest = word.partition(":")
    return name if colon and not rest and name.isalpha() else ""


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = lex(query)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def end_column(self) -> int:
        return len(self.query.rstrip()) + 1

    def parse(self) -> Node:
        if not self.tokens:
            raise QueryError(1, "empty query", "write at least one term")
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            if token.kind == "RPAREN":
                raise QueryError(token.column, "unbalanced ')'", "remove it or add a '('")
            raise self.missing_operator(token)
        return node

    def missing_operator(self, token: Token) -> QueryError:
        previous = self.tokens[self.pos - 1].text if self.pos else ""
        if token.text.lower() in ("and", "or", "not") or token.text.lower().startswith("near"):
            hint = f"operators are upper case: write {token.text.upper()}"
        elif token.kind == "LPAREN" and (field := _unknown_field(previous)):
            return QueryError(self.tokens[self.pos - 1].column, f"unknown field {field + ':'!r}",
                              did_you_mean(field, [*FIELDS, "sentence", "feed", "tag"], "fields"))
        else:
            hint = f'join them with AND or OR, or quote them as a phrase: "{previous} {token.text}"'
        return QueryError(token.column, f"two terms with no operator between them at {token.text!r}",
                          hint)

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.next()
            children.append(self.parse_and("OR"))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self, after: str = "") -> Node:
        children = [self.parse_near(after)]
        while (token := self.peek()) is not None and token.kind in ("AND", "NOT"):
            self.next()
            if token.kind == "AND":
                children.append(self.parse_near("AND"))
            else:
                children.append(Not(self.parse_near("NOT"), token.column))
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_near(self, after: str = "") -> Node:
        node = self.parse_unary(after)
        while (token := self.peek()) is not None and token.kind == "NEAR":
            self.next()
            right = self.parse_unary(token.text)
            for side, operand in (("left", node), ("right", right)):
                if not is_positional(operand):
                    raise QueryError(token.column, f"the {side} side of {token.text} is not a "
                                     "word, phrase, @entity or (… OR …) group",
                                     "NEAR measures distance between terms; move AND, NOT, "
                                     "field and sentence scopes and /regex/ outside it")
            node = Near(node, right, token.distance, token.ordered, token.column)
        return node

    def parse_unary(self, after: str = "") -> Node:
        token = self.peek()
        if token is not None and token.kind == "NOT":
            self.next()
            return Not(self.parse_unary("NOT"), token.column)
        return self.parse_primary(after)

    def parse_primary(self, after: str) -> Node:
        token = self.peek()
        where = f" after {after}" if after else ""
        if token is None:
            raise QueryError(self.end_column(), f"expected a term{where}")
        if token.kind == "TERM":
            self.next()
            assert token.node is not None
            return token.node
        if token.kind == "LPAREN":
            self.next()
            if (close := self.peek()) is not None and close.kind == "RPAREN":
                raise QueryError(close.column, "empty parentheses ()")
            node = self.parse_or()
            close = self.peek()
            if close is None:
                raise QueryError(token.column, "unclosed '('", "add the matching ')'")
            if close.kind != "RPAREN":  # "(drone or missile)" stops at "or", not for want of a ")"
                raise self.missing_operator(close)
            self.next()
            return node
        if token.kind == "FIELD":
            self.next()
            return Scope(token.text, self.parse_primary(f"{token.text}:"), token.column)
        if token.kind == "SENTENCE":
            self.next()
            return Sentence(self.parse_primary(f"{token.text}:"), token.column, token.distance)
        raise QueryError(token.column, f"expected a term{where}, found {token.text!r}")


def parse(query: str) -> Node:
    """Parse a query; raises QueryError with the column of the first problem."""
    return _Parser(query).parse()


def walk(node: Node, clauses: bool = True) -> list[Node]:
    """Every node of the tree, parents before children; into clause bodies unless ``clauses`` is false."""
    out: list[Node] = [node]
    if isinstance(node, And | Or):
        for child in node.children:
            out.extend(walk(child, clauses))
    elif isinstance(node, Not | Scope | Sentence):
        out.extend(walk(node.child, clauses))
    elif isinstance(node, Clause) and clauses:
        out.extend(walk(node.body, clauses))
    elif isinstance(node, Near):
        out.extend(walk(node.left, clauses))
        out.extend(walk(node.right, clauses))
    elif isinstance(node, Phrase):
        out.extend(node.words)
    return out
