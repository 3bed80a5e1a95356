"""``rules explain``: one rule's query tree over one document, each node true or false, with its hits.

Pure. Every node of the rule's tree is compiled on its own (with the rule set's terms and
gazetteer) and evaluated on the document as the rule sees it: in the rule's fields, in a
field for ``title:(…)``, and in one sentence for ``sentence:(…)`` (the first sentence where
it holds; the whole document when none does). OR groups that hold show the alternatives
that held and count the rest, so a lexicon of two hundred words stays one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.rules import query as q
from monitor.rules.engine import RuleSet, _Compiler
from monitor.rules.loader import RuleSpec
from monitor.rules.nodes import ALL_FIELDS, DocView, Hit
from monitor.types import FIELDS, Document

MAX_HITS = 8  # hit labels shown per node
MAX_FALSE = 5  # alternatives that did not hold shown for an OR that did not hold either


@dataclass
class Explained:
    """A node of the tree: its text, whether it held, its hits, its children."""

    text: str
    held: bool
    hits: list[str] = field(default_factory=list)
    children: list[Explained] = field(default_factory=list)
    note: str = ""

    def record(self) -> dict[str, Any]:
        return {"node": self.text, "held": self.held, "hits": self.hits, "note": self.note,
                "children": [c.record() for c in self.children]}


def node_text(ast: q.Node) -> str:
    """A node as a query would say it (its operator only, for AND, OR and scopes)."""
    if isinstance(ast, q.Word):
        return ast.token + ("*" if ast.prefix else "")
    if isinstance(ast, q.Phrase):
        return f'"{" ".join(node_text(w) for w in ast.words)}"'
    if isinstance(ast, q.EntityRef):
        return f"@{ast.name}"
    if isinstance(ast, q.Regex):
        return f"/{ast.pattern}/"
    if isinstance(ast, q.Meta):
        return f"{ast.kind}:{ast.value}"
    if isinstance(ast, q.Clause | q.Ref):
        return f"${ast.name}"
    if isinstance(ast, q.Near):
        return f"NEAR/{ast.distance}{'f' if ast.ordered else ''}"
    if isinstance(ast, q.Scope):
        return f"{ast.field}:( )"
    if isinstance(ast, q.Sentence):
        return "sentence:( )" if ast.size == 1 else f"sentence/{ast.size}:( )"
    return {q.And: "AND", q.Or: "OR", q.Not: "NOT"}[type(ast)]


def _children(ast: q.Node) -> list[q.Node]:
    if isinstance(ast, q.And | q.Or):
        return list(ast.children)
    if isinstance(ast, q.Near):
        return [ast.left, ast.right]
    if isinstance(ast, q.Not | q.Scope | q.Sentence):
        return [ast.child]
    if isinstance(ast, q.Clause):
        return [ast.body]
    return []


class _Explainer:
    def __init__(self, rule_set: RuleSet) -> None:
        self.compiler = _Compiler(rule_set.terms, rule_set.gazetteer)
        self.rule_set = rule_set

    def explain(self, ast: q.Node, view: DocView, scope: tuple[int, ...]) -> Explained:
        node = self.compiler.node(ast)
        held = node.holds(view, scope)
        hits: list[Hit] = []
        if held:
            node.collect(view, scope, hits)
        labels = list(dict.fromkeys(h.label for h in sorted(hits)))
        shown = labels[:MAX_HITS] + ([f"+{len(labels) - MAX_HITS} more"] if len(labels) > MAX_HITS else [])
        out = Explained(node_text(ast), held, shown)
        if isinstance(ast, q.Scope):
            scope = (FIELDS.index(ast.field),)
        if isinstance(ast, q.Sentence):
            return self._sentence(ast, out, view, scope)
        children = _children(ast)
        if isinstance(ast, q.Phrase) or (isinstance(ast, q.Clause) and not children):
            return out
        explained = [self.explain(child, view, scope) for child in children]
        if isinstance(ast, q.Or) and len(explained) > MAX_FALSE:
            out.children, out.note = _some(explained, held)
        else:
            out.children = explained
        return out

    def _sentence(self, ast: q.Sentence, out: Explained, view: DocView, scope: tuple[int, ...]) -> Explained:
        inner = self.compiler.node(ast.child)
        for field_index in scope:
            if not view.fields[field_index].tokens:
                continue
            for _, sentence in view.sentences(field_index, size=ast.size):
                if inner.holds(sentence, ALL_FIELDS):
                    text = " ".join(sentence.fields[field_index].display.split())
                    out.note = f"in the {FIELDS[field_index]}: {text[:200]!r}"
                    out.children = [self.explain(ast.child, sentence, ALL_FIELDS)]
                    return out
        out.note = ("no sentence holds it" if ast.size == 1 else f"no {ast.size} consecutive sentences hold it") \
            + "; inside, read over the whole document"
        out.children = [self.explain(ast.child, view, scope)]
        return out


def _some(explained: list[Explained], held: bool) -> tuple[list[Explained], str]:
    """The alternatives of a long OR worth showing, and a note on the others."""
    if held:
        shown = [e for e in explained if e.held]
        return shown, f"{len(explained) - len(shown)} other alternatives did not hold"
    return explained[:MAX_FALSE], f"+{len(explained) - MAX_FALSE} more alternatives, none held"


def explain(spec: RuleSpec, rule_set: RuleSet, doc: Document) -> tuple[bool, Explained]:
    """Whether ``spec`` (a rule of ``rule_set``) matches ``doc``, and its query tree over it."""
    compiled = next(r for r in rule_set.rules if r.spec.id == spec.id)
    fired = any(m.rule == spec.id for m in rule_set.match(doc))
    view = rule_set.view(doc)
    return fired, _Explainer(rule_set).explain(spec.query, view, compiled.scope)


def render(tree: Explained, indent: int = 0, top: bool = True) -> list[str]:
    """The tree as text lines: ✓ or ✗, the node, a note, and its hits where they say something new
    (at the top, on terms, NEAR and clauses; AND and OR would repeat their children's)."""
    line = f"{'  ' * indent}{'✓' if tree.held else '✗'} {tree.text}"
    if tree.hits and (top or not tree.children or tree.text.startswith(("$", "NEAR"))):
        line += f"  [{', '.join(tree.hits)}]"
    if tree.note:
        line += f"  ({tree.note})"
    lines = [line]
    for child in tree.children:
        lines.extend(render(child, indent + 1, False))
    return lines
