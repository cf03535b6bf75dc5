"""The stop-string scanner of batched generations: no stop, nor the start of one, is ever sent."""

from __future__ import annotations

from voxbus.engines.llm_sampling import StopScanner


def feed_all(scanner: StopScanner, pieces: list[str]) -> tuple[str, bool]:
    sent = ""
    for piece in pieces:
        out, stopped = scanner.feed(piece)
        sent += out
        if stopped:
            return sent, True
    return sent + scanner.rest(), False


def test_text_without_stops_passes_whole() -> None:
    pieces = ["Sure", ", I can", " help."]
    assert feed_all(StopScanner(["<|im_end|>"]), pieces) == ("Sure, I can help.", False)


def test_a_stop_split_over_pieces_is_cut_and_never_sent() -> None:
    scanner = StopScanner(["<|im_end|>"])
    assert scanner.feed("Done.<|im") == ("Done.", False)  # the tail may begin the stop: held
    assert scanner.feed("_end|> more") == ("", True)


def test_a_held_tail_that_turns_out_not_to_be_a_stop_is_sent() -> None:
    scanner = StopScanner(["\nUser:"])
    assert scanner.feed("One\nUs") == ("One", False)
    assert scanner.feed("ually two") == ("\nUsually two", False)


def test_the_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopScanner(["B", "A"]), ["xxAyyB"]) == ("xx", True)


def test_no_stops_means_nothing_held() -> None:
    assert StopScanner([""]).feed("abc") == ("abc", False)
