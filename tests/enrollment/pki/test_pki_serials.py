import pytest

from enrollment.pki.serials import normalize_serial, serial_text


@pytest.mark.parametrize(
    "typed",
    [
        "f17fc26d",  # as stored
        "0F17FC26D",  # openssl x509 -serial: upper case, padded to whole bytes
        "f1:7f:c2:6d",  # colons, as browsers show it
        "0F:17:FC:26:D",
        " 0f 17 fc 26 d ",  # spaces, as certutil wraps it
        "0xf17fc26d",
        "00f17fc26d",
    ],
)
def test_the_usual_shapes_of_a_serial_become_the_stored_form(typed):
    assert normalize_serial(typed) == "f17fc26d"


def test_the_stored_form_is_lower_case_hex_without_leading_zeros():
    assert serial_text(0x0F17FC26D) == "f17fc26d"
    assert normalize_serial(serial_text(2**158 + 5)) == serial_text(2**158 + 5)
    assert normalize_serial("000") == "0"


@pytest.mark.parametrize("typed", ["", "   ", "not-a-serial", "12g4"])
def test_other_text_is_left_to_fail_the_lookup(typed):
    assert normalize_serial(typed) == "".join(typed.split()).lower()
