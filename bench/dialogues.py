"""The benchmarks' callers: what they say, and when (``voxbus.media.dialogue``).

- ``QUESTIONS``: ten questions of general knowledge, with one interruption, a backchannel and a
  cough during answers, and a hesitant turn with a pause mid-sentence;
- ``APPOINTMENT``: a patient moving an appointment, the turns of a real phone call (a name, days,
  times, a reason, long sentences), with an interruption and a backchannel.
"""

from __future__ import annotations

from voxbus.media.dialogue import Dialogue, DialogueLine

QUESTIONS = Dialogue(
    lines=[
        DialogueLine(text="What is the capital of France?"),
        DialogueLine(text="How many days are there in a week?"),
        DialogueLine(text="Tell me about the history of Rome."),
        DialogueLine(
            text="Sorry, stop. What is the capital of Italy?",
            when="during_reply",
            gap_s=1.5,
            role="interrupt",
        ),
        DialogueLine(text="Can you name a colour of the sky?"),
        DialogueLine(text="Tell me some facts about the moon."),
        DialogueLine(text="Yeah, okay.", when="during_reply", gap_s=1.2, role="backchannel"),
        DialogueLine(text="noise:cough", when="after_line", gap_s=1.0, role="noise"),
        DialogueLine(text="I'd like to book a table, um", role="hesitation"),
        DialogueLine(text="for four people at seven tonight.", when="after_line", gap_s=0.9),
        DialogueLine(text="What do bees make?"),
        DialogueLine(text="Thank you, that is all.")
    ],
    settle_s=5.0,
)  # fmt: skip

APPOINTMENT = Dialogue(
    lines=[
        DialogueLine(text="Hi, this is Peter Walsh. I need to move my appointment because my dog is sick."),
        DialogueLine(text="Is there anything free next Tuesday afternoon, maybe around three o'clock?"),
        DialogueLine(
            text="Sorry, wait. Actually Wednesday morning would be better for me.",
            when="during_reply",
            gap_s=1.5,
            role="interrupt",
        ),
        DialogueLine(text="Yes, half past ten on Wednesday works. Please book that for me."),
        DialogueLine(text="Mm-hmm.", when="during_reply", gap_s=1.0, role="backchannel"),
        DialogueLine(text="Do I need to bring anything with me, like my insurance card?"),
        DialogueLine(text="And how long will the check-up take, roughly?"),
        DialogueLine(text="Great, thanks a lot. That is all for today."),
    ],
    settle_s=5.0,
)

DIALOGUES = {"questions": QUESTIONS, "appointment": APPOINTMENT}
