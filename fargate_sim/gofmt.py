"""Number formatting exactly like Go's ``strconv.FormatFloat(v, 'g', -1, 64)``, which client_golang uses.

Collectors are tested against real kubelet text, so the simulator must print ``5.36870912e+08`` and
``110.329293`` the same way rather than Python's ``536870912.0``.
"""

from __future__ import annotations

import math


def go_float(value: float) -> str:
    """Format a float as Go's shortest 'g' representation."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    negative = value < 0
    if value.is_integer() and abs(value) < 1e15:
        text = str(int(abs(value)))
        if len(text) <= 6:  # below 1e6 an integer always prints plainly
            return "-" + text if negative else text
        digits = text
        exponent = 0
    else:
        text = repr(abs(float(value)))
        mantissa, _, exp_text = text.partition("e")
        whole, _, fraction = mantissa.partition(".")
        if fraction == "0":
            fraction = ""
        digits = whole + fraction
        exponent = (int(exp_text) if exp_text else 0) - len(fraction)
    digits = digits.lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    nd = len(digits)
    dp = nd + exponent  # position of the decimal point relative to the digit string
    eprec = 6
    if eprec > nd and nd >= dp:
        eprec = nd
    exp = dp - 1
    prefix = "-" if negative else ""
    if exp < -4 or exp >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        esign = "+" if exp >= 0 else "-"
        return f"{prefix}{mantissa}e{esign}{abs(exp):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{prefix}{digits}{'0' * (dp - nd)}"
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"
