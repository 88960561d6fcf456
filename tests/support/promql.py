"""Just enough PromQL reading to list the metric names an expression selects.

Strings, label matchers, grouping clauses and ranges are taken out; what is left is
functions (a name before ``(``), operators and keywords, numbers, and metric names.
Anything else is an error, so a typo cannot pass as a metric name nobody exports.
"""

from __future__ import annotations

import re

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta",
    "deriv", "exp", "floor", "group", "histogram_quantile", "holt_winters", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log2",
    "log10", "max", "max_over_time", "min", "min_over_time", "predict_linear", "quantile",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc", "sqrt",
    "stddev", "stddev_over_time", "stdvar", "sum", "sum_over_time", "time", "timestamp",
    "topk", "vector",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r"\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*S\s*")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\(\s*[a-zA-Z0-9_,\s]*\)"
)
_RANGE = re.compile(r"\[\s*(\d+[smhdwy]|\$__rate_interval|\$__interval)\s*\]")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b")


class PromQLError(ValueError):
    pass


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects; PromQLError where it does not read as PromQL."""
    if expr.count("(") != expr.count(")"):
        raise PromQLError(f"unbalanced parentheses: {expr}")
    text = _STRING.sub("S", expr)
    for matchers in _MATCHERS.findall(text):
        for matcher in filter(str.strip, matchers.split(",")):
            if not _MATCHER.fullmatch(matcher):
                raise PromQLError(f"bad label matcher {matcher!r} in {expr}")
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    if "[" in text or "{" in text:
        raise PromQLError(f"bad range or selector in {expr}")
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        is_call = text[match.end() :].lstrip().startswith("(")
        if is_call:
            if word not in FUNCTIONS:
                raise PromQLError(f"unknown function {word} in {expr}")
        elif word.lower() not in KEYWORDS:
            names.add(word)
    if re.search(r"[^\sa-zA-Z0-9_:()+\-*/%^<>=!,.]", text):
        raise PromQLError(f"unexpected characters in {expr}")
    return names
