"""shared/sms.py: an SMS's encoding, size and fragments, at the carriers' boundaries."""

from __future__ import annotations

import pytest

from shared.sms import GSM7, GSM7_EXTENSION, UCS2, SmsLength, sms_length


class TestAlphabet:
    def test_the_extension_table_is_the_codecs(self) -> None:
        assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\x0c")

    def test_every_counted_text_is_one_the_codec_encodes(self) -> None:
        text = "Hello @£$¥ èéùìò ÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>? ¡ÄÖÑÜ§¿äöñüà\n\r ^{}\\[~]|€"
        assert sms_length(text).encoding == GSM7
        encoded = text.encode("gsm03.38")
        assert sms_length(text).units == len(encoded)


class TestGsm7:
    @pytest.mark.parametrize(
        ("text", "units", "fragments"),
        [
            ("", 0, 1),
            ("a" * 160, 160, 1),
            ("a" * 161, 161, 2),
            ("a" * 306, 306, 2),
            ("a" * 307, 307, 3),
            ("€" * 80, 160, 1),  # an extension character takes two septets
            ("€" * 81, 162, 2),
            ("a" * 1600, 1600, 11),
        ],
        ids=["empty", "160", "161", "306", "307", "80-euros", "81-euros", "1600"],
    )
    def test_units_and_fragments(self, text: str, units: int, fragments: int) -> None:
        assert sms_length(text) == SmsLength(GSM7, units, fragments)

    def test_an_escape_pair_never_straddles_two_fragments(self) -> None:
        # 306 septets: two full fragments, unless the escape pair would take the 153rd and 154th
        # septets: then it starts the second fragment, and the last septet needs a third.
        assert sms_length("a" * 152 + "€" + "a" * 152).fragments == 3
        assert sms_length("a" * 151 + "€" + "a" * 153).fragments == 2

    def test_bytes_are_septets(self) -> None:
        assert sms_length("a" * 1600).bytes == 1600
        assert sms_length("€" * 800).bytes == 1600


class TestUcs2:
    @pytest.mark.parametrize(
        ("text", "units", "fragments"),
        [
            ("ж" * 70, 70, 1),
            ("ж" * 71, 71, 2),
            ("ж" * 134, 134, 2),
            ("ж" * 135, 135, 3),
            ("🎉" * 35, 70, 1),  # outside the BMP: two UTF-16 code units
            ("🎉" * 36, 72, 2),
            ("a" * 69 + "ж", 70, 1),  # one character outside GSM-7 makes the whole text UCS-2
        ],
        ids=["70", "71", "134", "135", "35-emoji", "36-emoji", "mixed"],
    )
    def test_units_and_fragments(self, text: str, units: int, fragments: int) -> None:
        assert sms_length(text) == SmsLength(UCS2, units, fragments)

    def test_a_surrogate_pair_never_straddles_two_fragments(self) -> None:
        assert sms_length("ж" * 66 + "🎉" + "ж" * 66).fragments == 3
        assert sms_length("ж" * 65 + "🎉" + "ж" * 67).fragments == 2

    def test_bytes_are_two_per_unit(self) -> None:
        assert sms_length("ж" * 800).bytes == 1600
        assert sms_length("ж" * 801).bytes == 1602
