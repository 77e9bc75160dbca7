"""``from_size``: every backbone family's named sizes (tiny, small, base, ...).

Example:

>>> backbone = BertBackbone.from_size("tiny", vocabulary_size=8000, num_layers=4)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, ClassVar


class NamedSizes:
    """Mixin for backbones: :meth:`from_size` builds a named size of the class's ``SIZES``.

    Subclasses set ``SIZES`` (size name -> constructor arguments) and
    ``FAMILY`` (the family's name in error messages).
    """

    SIZES: ClassVar[dict[str, dict[str, Any]]] = {}
    FAMILY: ClassVar[str] = ""

    @classmethod
    def from_size(cls, size: str, vocabulary_size: int, **overrides: Any):
        """Builds the named ``size`` with ``overrides`` of its arguments; None overrides are ignored."""
        if size not in cls.SIZES:
            raise ValueError(
                f"unknown {cls.FAMILY} size {size!r}; choose one of {', '.join(cls.SIZES)}"
            )
        settings = dict(cls.SIZES[size])
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(vocabulary_size=vocabulary_size, **settings)
