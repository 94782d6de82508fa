"""Nick rules: what a nick may hold, and the skeleton that tells look-alikes apart.

Nothing in this module touches a socket. ``check_nick`` says whether a nick is
acceptable and why not: letters, digits and ``_ - .``, one script, nothing
invisible. ``skeleton`` reduces a nick to what a reader sees, so that two nicks
a person could mistake for each other (``ada`` and ``аda`` with a Cyrillic
``а``, ``ADA`` and ``ａｄａ``) reduce to the same string and the room can keep
them unique with one dictionary look-up.
"""

from __future__ import annotations

import unicodedata

from .text import safe

MAX_NICK = 20

# -- look-alikes ------------------------------------------------------------------------------
#
# The facts come from Unicode's confusables.txt (UTS #39, "Unicode Security Mechanisms"), which
# maps each character to the prototype it can be mistaken for. That file is large and changes with
# every Unicode release, and the engine uses the standard library only, so the room keeps its own
# small table of what matters for a nick, applied after NFKC and case folding:
#
# - NFKC already turns fullwidth letters, mathematical bold/italic/script letters, ligatures and
#   superscripts into the plain letters they style: they need no entry here.
# - Case folding comes first because nicks are unique whatever their case. So each entry is keyed
#   by a lower-case letter, and where the capital is the convincing twin (Cyrillic В and Latin B,
#   Greek Η and Latin H) the prototype is the Latin letter that capital copies.
# - Folding case first also joins the classes UTS #39 keeps apart by case: capital I looks like
#   small l, and I folds to i, so i, l, 1 and the dotless i all share the prototype "l" (a room
#   with "ian" refuses "lan", which is how "Ian" reads in most fonts).
# - The skeleton is worked out on decomposed text, so an accent rides along on its prototype:
#   Cyrillic ё (е with diaeresis) reduces like Latin ë, Greek ά like á.
_PROTOTYPES: dict[str, str] = {
    # Digits that pass for letters (UTS #39: 0 -> O, 1 -> l); Arabic-Indic one is a stroke too.
    "0": "o",
    "1": "l",
    "\u0661": "l",  # ARABIC-INDIC DIGIT ONE
    "\u06f1": "l",  # EXTENDED ARABIC-INDIC DIGIT ONE
    # Latin letters that look like other Latin letters.
    "i": "l",
    "\u0131": "l",  # LATIN SMALL LETTER DOTLESS I
    "\u0269": "l",  # LATIN SMALL LETTER IOTA
    "\u01c0": "l",  # LATIN LETTER DENTAL CLICK, a plain vertical stroke
    "\u0251": "a",  # LATIN SMALL LETTER ALPHA
    "\u0261": "g",  # LATIN SMALL LETTER SCRIPT G
    "\u0237": "j",  # LATIN SMALL LETTER DOTLESS J
    # Latin small capitals look like capitals, and case does not count.
    "\u1d00": "a",
    "\u0299": "b",
    "\u1d04": "c",
    "\u1d05": "d",
    "\u1d07": "e",
    "\u0262": "g",
    "\u029c": "h",
    "\u026a": "l",
    "\u1d0a": "j",
    "\u1d0b": "k",
    "\u029f": "l",
    "\u1d0d": "m",
    "\u0274": "n",
    "\u1d0f": "o",
    "\u1d18": "p",
    "\u0280": "r",
    "\ua731": "s",
    "\u1d1b": "t",
    "\u1d1c": "u",
    "\u1d20": "v",
    "\u1d21": "w",
    "\u028f": "y",
    "\u1d22": "z",
    # Cyrillic (lower case, as folding leaves it).
    "\u0430": "a",  # а
    "\u0432": "b",  # в, as В looks like B
    "\u0433": "r",  # г
    "\u0435": "e",  # е
    "\u0456": "l",  # і, Byelorussian-Ukrainian i
    "\u0458": "j",  # ј
    "\u043a": "k",  # к, as К looks like K
    "\u043c": "m",  # м, as М looks like M
    "\u043d": "h",  # н, as Н looks like H
    "\u043e": "o",  # о
    "\u0440": "p",  # р
    "\u0441": "c",  # с
    "\u0442": "t",  # т, as Т looks like T
    "\u0443": "y",  # у
    "\u0445": "x",  # х
    "\u0455": "s",  # ѕ
    "\u0475": "v",  # ѵ, izhitsa
    "\u04af": "y",  # ү, straight u
    "\u04bb": "h",  # һ, shha
    "\u04cf": "l",  # ӏ, palochka (Ӏ folds to it)
    "\u0501": "d",  # ԁ, komi de
    "\u051b": "q",  # ԛ
    "\u051d": "w",  # ԝ
    # Greek (lower case, as folding leaves it).
    "\u03b1": "a",  # α
    "\u03b2": "b",  # β, as Β looks like B
    "\u03b3": "y",  # γ
    "\u03b5": "e",  # ε, as Ε looks like E
    "\u03b6": "z",  # ζ, as Ζ looks like Z
    "\u03b7": "h",  # η, as Η looks like H
    "\u03b9": "l",  # ι, as Ι looks like I
    "\u03ba": "k",  # κ
    "\u03bc": "m",  # μ, as Μ looks like M
    "\u03bd": "n",  # ν, as Ν looks like N
    "\u03bf": "o",  # ο
    "\u03c1": "p",  # ρ
    "\u03c4": "t",  # τ
    "\u03c5": "y",  # υ, as Υ looks like Y
    "\u03c7": "x",  # χ
    "\u03c9": "w",  # ω
    "\u03f2": "c",  # ϲ, lunate sigma
    "\u03f3": "j",  # ϳ
    # Armenian letters drawn like Latin ones.
    "\u0570": "h",  # հ
    "\u0578": "n",  # ո
    "\u057d": "u",  # ս
    "\u0581": "g",  # ց
    "\u0566": "q",  # զ
    "\u0585": "o",  # օ
    # Cherokee: capital letters shaped like Latin capitals (small Cherokee letters fold to
    # these, so one entry serves both; Ꮁ is here because its small form is an r).
    "\u13a0": "d",  # Ꭰ
    "\u13a1": "r",  # Ꭱ
    "\u13a2": "t",  # Ꭲ
    "\u13a5": "l",  # Ꭵ
    "\u13a9": "y",  # Ꭹ
    "\u13aa": "a",  # Ꭺ
    "\u13ab": "j",  # Ꭻ
    "\u13ac": "e",  # Ꭼ
    "\u13b1": "r",  # Ꮁ
    "\u13b3": "w",  # Ꮃ
    "\u13b7": "m",  # Ꮇ
    "\u13bb": "h",  # Ꮋ
    "\u13bd": "y",  # Ꮍ
    "\u13c0": "g",  # Ꮐ
    "\u13c2": "h",  # Ꮒ
    "\u13c3": "z",  # Ꮓ
    "\u13ce": "4",  # Ꮞ
    "\u13cf": "b",  # Ꮟ
    "\u13d2": "r",  # Ꮢ
    "\u13d4": "w",  # Ꮤ
    "\u13d5": "s",  # Ꮥ
    "\u13d9": "v",  # Ꮩ
    "\u13da": "s",  # Ꮪ
    "\u13de": "l",  # Ꮮ
    "\u13df": "c",  # Ꮯ
    "\u13e2": "p",  # Ꮲ
    "\u13e6": "k",  # Ꮶ
    "\u13e7": "d",  # Ꮷ
    "\u13ee": "6",  # Ꮾ
    "\u13f3": "g",  # Ᏻ
    "\u13f4": "b",  # Ᏼ
    # Lisu: capitals drawn from the Latin alphabet, some of them turned.
    "\ua4d0": "b",  # ꓐ
    "\ua4d1": "p",  # ꓑ
    "\ua4d2": "d",  # ꓒ
    "\ua4d3": "d",  # ꓓ
    "\ua4d4": "t",  # ꓔ
    "\ua4d6": "g",  # ꓖ
    "\ua4d7": "k",  # ꓗ
    "\ua4d9": "j",  # ꓙ
    "\ua4da": "c",  # ꓚ
    "\ua4dc": "z",  # ꓜ
    "\ua4dd": "f",  # ꓝ
    "\ua4df": "m",  # ꓟ
    "\ua4e0": "n",  # ꓠ
    "\ua4e1": "l",  # ꓡ
    "\ua4e2": "s",  # ꓢ
    "\ua4e3": "r",  # ꓣ
    "\ua4e6": "v",  # ꓦ
    "\ua4e7": "h",  # ꓧ
    "\ua4ea": "w",  # ꓪ
    "\ua4eb": "x",  # ꓫ
    "\ua4ec": "y",  # ꓬ
    "\ua4ee": "a",  # ꓮ
    "\ua4f0": "e",  # ꓰ
    "\ua4f2": "l",  # ꓲ
    "\ua4f3": "o",  # ꓳ
    "\ua4f4": "u",  # ꓴ
    # Canadian syllabics shaped like Latin letters.
    "\u142f": "v",  # ᐯ
    "\u144c": "u",  # ᑌ
    "\u146d": "p",  # ᑭ
    "\u146f": "d",  # ᑯ
    "\u148d": "j",  # ᒍ
    "\u14aa": "l",  # ᒪ
    "\u157c": "h",  # ᕼ
    "\u1587": "r",  # ᖇ
    "\u15af": "b",  # ᖯ
    "\u15b4": "f",  # ᖴ
    "\u15c5": "a",  # ᗅ
    "\u15de": "d",  # ᗞ
    "\u15ea": "d",  # ᗪ
    "\u15f0": "m",  # ᗰ
    "\u15f7": "b",  # ᗷ
}


def skeleton(nick: str) -> str:
    """What a reader sees in ``nick``: equal skeletons mean nicks one could mistake for each other.

    NFKC (fullwidth and mathematical letters become plain ones), case folding, then each
    character to its Latin prototype, and ``m`` to ``rn`` as UTS #39 does.
    ``skeleton("аda") == skeleton("ADA") == skeleton("ａｄａ") == skeleton("𝐚𝐝𝐚")``.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", nick).casefold())
    mapped = "".join(_PROTOTYPES.get(ch, ch) for ch in folded).replace("m", "rn")
    return unicodedata.normalize("NFC", mapped)


# -- the rules --------------------------------------------------------------------------------


class RoomError(Exception):
    """A request the room refuses; ``code`` names the reason for programs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Characters that show nothing yet change what a nick is: besides the format characters
# (category Cf: zero-width joiners, bidirectional controls, soft hyphen, tags), the other
# default-ignorable code points that are marks or letters (grapheme joiner, variation
# selectors, Mongolian selectors, Khmer inherent vowels, the Hangul fillers).
_IGNORABLE = frozenset(
    {
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        *range(0x180B, 0x1810),
        0x3164,
        *range(0xFE00, 0xFE10),
        0xFFA0,
        *range(0xE0100, 0xE01F0),
    }
)

# The scripts one nick may mix, as UTS #39's "highly restrictive" level allows: Japanese
# writes Han with kana, Chinese with Bopomofo, Korean with Hangul, and each with Latin.
_MIXES = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)

# The first word of a character's name is its script, but for these.
_SCRIPT_WORDS = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",
    "KATAKANA-HIRAGANA": None,  # the prolonged sound mark, shared by both kana
    "MODIFIER": None,  # modifier letters such as the okina, used by many scripts
    "COMBINING": "Inherited",  # a mark that takes the script of its letter
}

# The most marks one letter may carry (UTS #39 suggests four nonspacing marks at most):
# Indic vowel signs and viramas need a few, stacks of accents do not.
_MAX_MARKS = 3


def _invisible(ch: str) -> bool:
    code = ord(ch)
    return unicodedata.category(ch) == "Cf" or code in _IGNORABLE or 0xE0000 <= code <= 0xE0FFF


def _shown(text: str) -> str:
    """Text safe to echo, with every invisible character spelled ``<U+XXXX>``."""
    return "".join(f"<U+{ord(ch):04X}>" if _invisible(ch) else ch for ch in safe(text))


def _described(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}" if name else f"U+{ord(ch):04X}"


def _script(ch: str) -> str | None:
    """The script a character belongs to, or None for one every script uses (digits, _ - .)."""
    if ch in "_-." or unicodedata.category(ch) == "Nd":
        return None
    word = unicodedata.name(ch, "").partition(" ")[0]
    return _SCRIPT_WORDS.get(word, word.title()) if word else None


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def check_nick(nick: str) -> str:
    """The nick, composed (NFC), if acceptable; RoomError('nick-invalid') saying why if not.

    A nick is 1 to MAX_NICK characters, starts with a letter, and holds letters, digits and
    ``_ - .``; a letter's own marks (an Indic vowel sign, an accent NFKC cannot compose) only
    as its script writes them; no invisible character; and one script (or a mix one language
    writes, such as Han with kana), so that no letter can pass for one of another script.
    """
    if not nick:
        raise RoomError("nick-invalid", "a nick cannot be empty")
    nick = unicodedata.normalize("NFC", nick)
    if len(nick) > MAX_NICK:
        raise RoomError("nick-invalid", f"nick too long: {len(nick)} characters, limit {MAX_NICK}")
    shown = _shown(nick)
    hidden = sorted({ch for ch in nick if _invisible(ch)})
    if hidden:
        what = ", ".join(_described(ch) for ch in hidden)
        some = "an invisible character" if len(hidden) == 1 else "invisible characters"
        raise RoomError("nick-invalid", f"nick {shown!r} holds {some} ({what}); please type it without")
    plain = unicodedata.normalize("NFKC", nick)  # the letters as compared: styles taken off
    if not plain[0].isalpha():
        raise RoomError("nick-invalid", f"nick {shown!r} must start with a letter")
    bad = sorted({ch for ch in plain if not (ch.isalnum() or ch in "_-." or _is_mark(ch))})
    if bad:
        listed = " ".join(repr(safe(ch)) for ch in bad)
        raise RoomError(
            "nick-invalid",
            f"nick {shown!r} may hold only letters, digits, _ - . (not {listed})",
        )
    _check_marks(plain, shown)
    _check_scripts(plain, shown)
    return nick


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _check_marks(plain: str, shown: str) -> None:
    """Every mark belongs to the script of the letter it sits on, and few sit on one letter."""
    base: str | None = None
    run = 0
    for ch in plain:
        if not _is_mark(ch):
            base, run = _script(ch), 0
            continue
        run += 1
        if _script(ch) != base:
            raise RoomError(
                "nick-invalid",
                f"nick {shown!r} holds a combining mark that is not part of a letter ({_described(ch)}); "
                "type the accented letter itself, or leave the mark out",
            )
        if run > _MAX_MARKS:
            raise RoomError(
                "nick-invalid",
                f"nick {shown!r} stacks more than {_MAX_MARKS} marks on one letter",
            )


def _check_scripts(plain: str, shown: str) -> None:
    """One script, or one of the mixes a language writes; else say which letters stray."""
    letters: dict[str, list[str]] = {}
    for ch in plain:
        script = _script(ch)
        if script is not None and script != "Inherited" and not _is_mark(ch):
            letters.setdefault(script, []).append(ch)
    scripts = set(letters)
    if len(scripts) <= 1 or any(scripts <= mix for mix in _MIXES):
        return
    # Name the letters of the scripts used least: those are the likely impostors.
    ranked = sorted(letters, key=lambda s: len(letters[s]), reverse=True)
    strays = [ch for script in ranked[1:] for ch in dict.fromkeys(letters[script])][:3]
    raise RoomError(
        "nick-invalid",
        f"nick {shown!r} mixes {_join_words(ranked)} letters "
        f"({', '.join(_described(ch) for ch in strays)}); please write it in one script",
    )
