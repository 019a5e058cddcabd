"""BibTeX values as plain text: the LaTeX that exports write in titles, names and abstracts
({\\"u}, \\&, --, ~, $\\alpha$, \\emph{…}, protective braces) turned into Unicode, and the
author list split into names.

Deliberately small: the accents, escapes and symbols exports use, each by one table lookup in
one regex pass, so that a plain value costs one search. Every step is a regex substitution
or a loop over brace positions: linear in the value, whatever its nesting."""

from __future__ import annotations

import re
import unicodedata

# Text with none of these is already plain (most values).
_LATEX = re.compile(r"[\\{}~$]|--")

# The combining mark of each accent command: \"u → u + U+0308 → ü (NFC).
_COMBINING = {
    "`": "\u0300",
    "'": "\u0301",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    "u": "\u0306",
    ".": "\u0307",
    '"': "\u0308",
    "r": "\u030a",
    "H": "\u030b",
    "v": "\u030c",
    "d": "\u0323",
    "c": "\u0327",
    "k": "\u0328",
    "b": "\u0331",
}
# \"u, \"{u}, \" u, \'{\i}; a letter accent (\v c, \c{c}) only before a space or a brace, so
# that \textbf or \url are not read as \t or \u.
_ACCENT = re.compile(
    r"""\\(?:([`'^~=."])|([uvHckrdb])(?=[\s{]))\s*"""
    r"""(?:\{\s*(\\[ij](?![A-Za-z])|[A-Za-z]?)\s*\}|(\\[ij](?![A-Za-z])|[A-Za-z]))"""
)
# A control word (TeX eats one space after it) or a control symbol.
_COMMAND = re.compile(r"\\([A-Za-z]+)[ \t]?|\\(.)", re.DOTALL)

# Braces and dollars a backslash escapes stand for themselves: held as private-use characters
# while the unescaped ones are dropped.
_LEFT, _RIGHT, _DOLLAR = "\ue000", "\ue001", "\ue002"
_ESCAPED = {"{": _LEFT, "}": _RIGHT, "$": _DOLLAR, "&": "&", "%": "%", "#": "#", "_": "_"}
_ESCAPED.update({"\\": " ", " ": " ", ",": " ", ";": " ", "-": "", "/": ""})

_GREEK = (
    "alpha α beta β gamma γ delta δ epsilon ϵ varepsilon ε zeta ζ eta η theta θ vartheta ϑ "
    "iota ι kappa κ lambda λ mu μ nu ν xi ξ pi π rho ρ sigma σ tau τ upsilon υ phi ϕ "
    "varphi φ chi χ psi ψ omega ω Gamma Γ Delta Δ Theta Θ Lambda Λ Xi Ξ Pi Π Sigma Σ "
    "Upsilon Υ Phi Φ Psi Ψ Omega Ω"
)
_SYMBOLS = (
    "ss ß SS SS o ø O Ø ae æ AE Æ oe œ OE Œ aa å AA Å l ł L Ł i ı j ȷ dh ð DH Ð th þ TH Þ "
    "ng ŋ NG Ŋ dj đ DJ Đ textendash – textemdash — ldots … dots … textellipsis … "
    "textquoteleft ‘ textquoteright ’ textquotedblleft “ textquotedblright ” "
    "guillemotleft « guillemotright » copyright © textcopyright © textregistered ® "
    "texttrademark ™ textdegree ° degree ° pounds £ textsterling £ euro € texteuro € S § P ¶ "
    "textbullet • times × pm ± textpm ± le ≤ leq ≤ ge ≥ geq ≥ neq ≠ ne ≠ approx ≈ sim ∼ "
    "infty ∞ cdot · textperiodcentered · textasciitilde ~ textbackslash \\ textunderscore _ "
    "textbar | textless < textgreater > rightarrow → leftarrow ← to → textmu µ"
)
#: Font switches, spacing and markup commands that print nothing themselves.
_SILENT = (
    "it bf em sc rm tt sf sl up md normalfont itshape bfseries scshape upshape rmfamily "
    "sffamily ttfamily mdseries slshape emph textit textbf textsc textrm textsf texttt textsl "
    "textup textmd textnormal mathrm mathbf mathit mathsf mathtt mathcal mathbb mbox hbox text "
    "textsuperscript textsubscript url nocase noopsort relax protect quad qquad "
    "hspace vspace left right displaystyle"
).split()


def _pairs(table: str) -> dict[str, str]:
    words = table.split()
    return dict(zip(words[::2], words[1::2], strict=True))


_NAMED = _pairs(_GREEK) | _pairs(_SYMBOLS) | dict.fromkeys(_SILENT, "")
_PLAIN = str.maketrans({"{": None, "}": None, "~": " ", _LEFT: "{", _RIGHT: "}", _DOLLAR: "$"})
_MATH = str.maketrans({"$": None, "^": None, "_": None})


def _accent(found: re.Match[str]) -> str:
    mark = _COMBINING[found.group(1) or found.group(2)]
    base = found.group(3) if found.group(3) is not None else found.group(4)
    base = base[1:] if base.startswith("\\") else base  # \i, \j: the dotless letters take it
    return unicodedata.normalize("NFC", base + mark) if base else ""


def _command(found: re.Match[str]) -> str:
    word = found.group(1)
    if word is None:
        return _ESCAPED.get(found.group(2), found.group(2))
    named = _NAMED.get(word)
    if named is not None:
        return named
    following = found.string[found.end() : found.end() + 2]
    # An unknown command before a group is markup around its text (\href, \textcolor…);
    # one standing alone is a word of its own (\LaTeX, \LaTeX{}).
    return "" if following[:1] == "{" and following != "{}" else word


def plain_text(value: str) -> str:
    """A value's text without LaTeX: accents and symbols as Unicode, braces dropped."""
    if _LATEX.search(value) is None:
        return value
    if "\\" in value:
        value = _ACCENT.sub(_accent, value)
        value = _COMMAND.sub(_command, value)
    if "$" in value:
        value = value.translate(_MATH)
    if "--" in value:
        value = value.replace("---", "—").replace("--", "–")
    return " ".join(value.translate(_PLAIN).split())


# " and " between names; braces hide it ({Barnes and Noble} is one name).
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_AND_OR_BRACE = re.compile(r"[{}]|\s+and\s+", re.IGNORECASE)


def _split_names(value: str) -> list[str]:
    if "{" not in value:
        # Fields hold one space between words: a plain split, unless "AND" is written large.
        if "  " in value or "\n" in value or value.lower().count(" and ") != value.count(" and "):
            return _AND.split(value)
        return value.split(" and ")
    names = []
    depth = 0
    start = 0
    for found in _AND_OR_BRACE.finditer(value):
        token = found.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth = max(depth - 1, 0)
        elif depth == 0:
            names.append(value[start : found.start()])
            start = found.end()
    names.append(value[start:])
    return names


def author_names(value: str) -> list[str]:
    """The names of an author (or editor) field as it writes them ("Last, First"), in order;
    BibTeX's "others" (et al.) is no name."""
    names = [name.strip() for name in _split_names(value)]
    names = [name for name in names if name and name.lower() != "others"]
    if _LATEX.search(value) is None:
        return names
    return [text for text in map(plain_text, names) if text]
