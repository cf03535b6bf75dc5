"""Turn-taking judgements on words: unfinished phrases, backchannels, echo, what was heard."""

from voxbus.actors.turns import heard_part, is_backchannel, is_echo, judge_barge_in, looks_unfinished
from voxbus.config import AgentSettings
from voxbus.engines.stt import spoken_words
from voxbus.lexicons import ENGLISH, Lexicon


def test_unfinished_phrases_wait_complete_ones_do_not() -> None:
    for text in ["I'd like to book a table for.", "I'd like to book, um...", "and", "My number is,"]:
        assert looks_unfinished(text, ENGLISH), text
    for text in ["What is the capital of France?", "Four people at seven.", "Thank you.", ""]:
        assert not looks_unfinished(text, ENGLISH), text


def test_backchannels_and_noises_are_not_turns() -> None:
    # "M.", "Hm.", "M-N-N", "MMs.": how whisper writes a short "mm-hmm" over a phone line (the
    # last two held the agent 0.7-0.9 s as asides in bench/turn_taking.py)
    noise = spoken_words("(coughing)")
    hums = ["M.", "Hm, hm.", "M-N-N", "MMs.", "Mmm.", "Nn-hmm."]
    for text in ["Uh-huh.", "Yeah, okay.", "Mm-hmm", "all right", noise, "", *hums]:
        assert is_backchannel(text, ENGLISH), text
    for text in ["Stop, please.", "Yeah, but what about Monday?", "No", "Mm, no.", "Hmm, Monday?", "Him."]:
        assert not is_backchannel(text, ENGLISH), text
    assert is_backchannel("Mm-hmm.", Lexicon())  # a hum in any language


def test_the_lexicon_is_configurable() -> None:
    german = Lexicon(backchannels=["ja", "genau"], fillers=["äh"], continuations=["und"])
    assert is_backchannel("Ja, genau.", german)
    assert looks_unfinished("Ich möchte und", german)
    assert not is_backchannel("Ja, genau.", Lexicon())


def test_echo_is_the_agents_own_words() -> None:
    said = "The capital of France is Paris, a city on the Seine."
    assert is_echo("capital of France is Paris", said, 0.6)
    assert not is_echo("Wait, what about Germany?", said, 0.6)
    # the echo of a word cut at the gate's edges is still the agent's
    assert is_echo("the north of the", "The Northern Lights", 0.6)
    assert not is_echo("Wait, what about Germany?", "What a wonderful country to visit", 0.6)


def test_judge_barge_in() -> None:
    said = "Paris is the capital of France."
    assert judge_barge_in("uh-huh", said, ENGLISH, 0, 0.6) == "a backchannel"
    assert judge_barge_in("", said, ENGLISH, 0, 0.6).startswith("no words")
    assert judge_barge_in("the capital of France", said, ENGLISH, 0, 0.6).endswith("(echo)")
    assert judge_barge_in("Stop.", said, ENGLISH, 0, 0.6) is None
    assert judge_barge_in("Stop.", said, ENGLISH, 2, 0.6, aside_words=2) is None  # a cue, however short
    assert judge_barge_in("No, wait.", said, ENGLISH, 0, 0.6, aside_words=2) is None  # second word
    assert judge_barge_in("Monday.", said, ENGLISH, 2, 0.6).startswith("1 words")
    # no cue: one or two words are an aside ("Bye, bye." is whisper's "I see" on a phone line)
    for aside in ["Bye, bye.", "And then, um.", "Involved."]:
        assert "an aside" in judge_barge_in(aside, said, ENGLISH, 0, 0.6, aside_words=2), aside
    assert judge_barge_in("Bye, bye.", said, ENGLISH, 0, 0.6) is None  # aside_words=0: any word
    assert judge_barge_in("What about Monday?", said, ENGLISH, 0, 0.6, aside_words=2) is None
    # a cue late in the phrase may be the agent's echo ("...would not stop"): not a cut-in by itself
    assert judge_barge_in("the bus would not stop", "The bus would not stop.", ENGLISH, 0, 0.6, 2)


def test_heard_part_cuts_at_the_played_frame() -> None:
    clauses = [("Paris is the capital.", 50), ("It lies on the Seine river.", 60)]
    assert heard_part(clauses, 0) == ""
    assert heard_part(clauses, 50) == "Paris is the capital."
    assert heard_part(clauses, 80) == "Paris is the capital. It lies on"
    assert heard_part(clauses, 500) == "Paris is the capital. It lies on the Seine river."


def test_whispers_sound_notes_are_not_words() -> None:
    assert spoken_words(" (coughing) Hello [BLANK_AUDIO] *sighs* there ♪") == "Hello there"


def test_echo_gate_mutes_the_echo_and_lets_the_caller_through() -> None:
    import numpy as np

    from voxbus.actors.stt_turn import echo_floor, is_echo
    from voxbus.actors.turn_settings import TurnSettings
    from voxbus.schemas.messages import AudioFrame

    rng = np.random.default_rng(1)
    far_db = -20.0  # the agent's level at the echo's delay

    def sound(db: float) -> np.ndarray:
        return rng.normal(0, 10 ** (db / 20), 320).astype(np.float32)

    def floor(echo_db: float | None, turns: TurnSettings | None = None) -> float | None:
        frame = AudioFrame(call_id="c", seq=0, pcm=bytes(640), far_db=far_db, echo_db=echo_db)
        return echo_floor(frame, turns or TurnSettings(echo_gate_db=-12.0, echo_margin_db=6.0))

    voice, soft = sound(-30.0), sound(-37.0)  # a caller 10 dB under the agent, and a softer one
    # the line's echo not measured yet: the agent's level less 12 dB decides
    assert (
        is_echo(sound(-40.0), floor(None)) and not is_echo(voice, floor(None)) and is_echo(soft, floor(None))
    )
    # measured 35 dB under the agent: the soft caller is heard, the echo is not
    assert is_echo(sound(-55.0), floor(-55.0)) and not is_echo(soft, floor(-55.0))
    # measured 8 dB under it (a speakerphone): the echo is gated, though it is louder than that limit
    assert is_echo(sound(-28.0), floor(-28.0)) and not is_echo(sound(-28.0), floor(None))
    assert floor(-55.0, TurnSettings(echo_gate_db=None)) is None  # the gate off
    assert echo_floor(AudioFrame(call_id="c", seq=0, pcm=bytes(640)), TurnSettings()) is None  # agent silent


def test_history_is_dropped_in_halves_so_the_prompt_prefix_stays() -> None:
    from voxbus.actors.call import history_start

    starts = [history_start(n, AgentSettings(history_messages=8).history_messages) for n in range(1, 20)]
    assert starts[:8] == [0] * 8  # up to 8 messages: all of them
    assert starts[8:12] == [4] * 4 and starts[12:16] == [8] * 4  # then it moves 4 at a time
    assert all(n - s <= 8 for n, s in zip(range(1, 20), starts, strict=True))


def test_a_sentence_whisper_repeats_is_kept_once() -> None:
    from voxbus.engines.stt import without_repeats

    assert without_repeats("What do bees make? What do bees make?") == "What do bees make?"
    assert without_repeats("Yeah, okay. Yeah, okay. Thanks.") == "Yeah, okay. Thanks."
    assert without_repeats("I'd like to book, um...") == "I'd like to book, um..."
    # a title's full stop ends no sentence: whisper's loop on an espeak-ng caller's first words
    assert without_repeats("Hi, Mrs. Peter Wall. Hi, Mrs. Peter Wall. I need to move.") == (
        "Hi, Mrs. Peter Wall. I need to move."
    )
    looped = (
        "Hi. Can you move my appointments from the next time? Can you move my appointments from the next time"
    )
    assert without_repeats(looped) == "Hi. Can you move my appointments from the next time?"
    assert (
        without_repeats("It costs 3.5 dollars. Dr. Grant is in.") == "It costs 3.5 dollars. Dr. Grant is in."
    )


def test_a_group_of_words_looped_by_whisper_is_kept_once() -> None:
    from voxbus.engines.stt import without_loops

    looped = "Thanks for calling your host, " + "your host, " * 10 + "your host."
    assert without_loops(looped) == "Thanks for calling your host."
    assert without_loops("I said the the the the the word") == "I said the word"
    assert without_loops("at ten at ten at ten at ten, please") == "at ten, please"
    # said three times by a caller, or a loop too long to be one: kept as heard
    assert without_loops("No, no, no, that's wrong.") == "No, no, no, that's wrong."
    seven = " ".join(["one two three four five six seven"] * 4)
    assert without_loops(seven) == seven
    assert without_loops("") == ""
