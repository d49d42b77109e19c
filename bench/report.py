"""The benchmark table: one row per figure, with its target and PASS/MISS where the issue sets one."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, metric: str, value: str, target: str = "", ok: bool | None = None) -> None:
        self.rows.append(Row(section, metric, value, target, ok))
        print(f"  {section} | {metric}: {value}" + (f"  [{target}: {self.rows[-1].verdict}]" if target else ""))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def render(self) -> str:
        header = ("section", "metric", "value", "target", "")
        table = [header, *((r.section, r.metric, r.value, r.target, r.verdict) for r in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table
        ]
        lines.insert(1, "  ".join("-" * width for width in widths).rstrip())
        missed = [r for r in self.rows if r.ok is False]
        passed = [r for r in self.rows if r.ok is True]
        lines.append("")
        lines.append(f"targets: {len(passed)} PASS, {len(missed)} MISS")
        lines.extend(f"note: {text}" for text in self.notes)
        return "\n".join(lines)
