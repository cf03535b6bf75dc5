"""Turn-taking word lists per language (backchannels, fillers, continuations), built in for
English and French; more come from ``turn.lexicons`` in the configuration."""

from __future__ import annotations

from pydantic import BaseModel, Field

# titles whose full stop ends neither a sentence nor a clause ("Hi, Mrs. Peter Wall." is one)
TITLES = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "mt"})


class Lexicon(BaseModel):
    """Words that shape turn-taking in one language (lower case; multi-word entries allowed)."""

    backchannels: list[str] = Field(
        default_factory=list, description="acknowledgements that do not take the turn: 'uh-huh', 'yeah'"
    )
    fillers: list[str] = Field(default_factory=list, description="hesitation sounds: 'um', 'uh'")
    continuations: list[str] = Field(
        default_factory=list,
        description="a phrase ending in one of these is unfinished: conjunctions, prepositions, articles",
    )
    interruptions: list[str] = Field(
        default_factory=list,
        description="words that cut the agent off whatever it just said ('stop', 'wait'): never taken "
        "for its echo, however short the phrase",
    )
    misheard_interruptions: list[str] = Field(
        default_factory=list,
        description="how whisper writes those words over a narrowband line ('top', 'up' for 'stop': "
        "the /s/ lies above 4 kHz): a cue too, unless the words are the agent's own echo",
    )

    acknowledgements: list[str] = Field(
        default_factory=list,
        description="an agent's openers that take the caller's turn without answering it ('sure', 'of "
        "course'): said as soon as the turn ends when the LLM opened with one on the words so far",
    )

    def cue_words(self, backchannels: bool = True) -> str:
        """The backchannels and the interruptions, written as whisper writes them ("I see. Stop."):
        the prompt for speech over the agent, where these are what the caller says and what the
        barge-in judge listens for (a prompt of fillers wrote "Stop." as "Uh..."). Without the
        backchannels: for the first words alone, which resume the agent only if they are one."""

        def written(entry: str) -> str:
            words = " ".join("I" if w == "i" else w for w in entry.split())
            return words[:1].upper() + words[1:]

        cues = [*self.backchannels, *self.interruptions] if backchannels else self.interruptions
        return " ".join(f"{written(w)}." for w in cues)

    def word_group_starts(self) -> frozenset[str]:
        """Single words that open a word group (the continuations: prepositions, conjunctions,
        articles, auxiliaries): where a long first clause of the agent's may be cut."""
        return frozenset(w for w in self.continuations if " " not in w)


ENGLISH = Lexicon(
    # "m", "hm": how whisper writes "Mm-hmm." over a phone line ("M.", "M-M-M."): 9 backchannels
    # and no interruption in the turn-taking and barge-words runs on file
    backchannels=[
        "uh huh", "mhm", "mm hmm", "mm", "hmm", "m", "hm", "yeah", "yes", "yep", "yup", "okay", "ok", "right",
        "sure", "alright", "all right", "i see", "got it", "cool", "nice", "great", "oh", "ah",
        "uh", "um", "wow", "really", "true", "exactly", "indeed", "fine", "good",
    ],
    fillers=["um", "uh", "er", "erm", "uhm", "hmm", "mm", "ah", "like", "you know", "i mean"],
    continuations=[
        "and", "or", "but", "so", "because", "cause", "if", "then", "than", "that", "which", "who",
        "to", "for", "of", "with", "without", "in", "on", "at", "by", "from", "about", "into",
        "the", "a", "an", "my", "your", "our", "their", "his", "her", "its", "this", "these",
        "some", "any", "is", "are", "was", "were", "am", "be", "would", "could", "should", "can",
        "will", "i", "i'd", "i'm", "we", "want", "need", "like", "please", "also", "maybe", "when",
        "where", "how", "what", "until", "after", "before", "around", "between",
    ],
    # strong cues only: an agent's answers say "sorry", "no" and "but" too, and their echo must not cut in
    interruptions=["stop", "wait", "hold on", "hang on", "excuse me"],
    # in every turn-taking and barge-words run on file (2,460 backchannels and noises, 1,460
    # interruptions), whisper began 11 interruptions with these and no backchannel or noise
    misheard_interruptions=["top", "up"],
    # not "yes", "no", "great" or "I'm sorry": those answer, and the caller's last words may turn
    # them (bench/early_openers.py: "I'm sorry," on words cut short, "Eleven", "Two in the", was
    # not the model's opener to the whole words in 6 of 7 lines)
    acknowledgements=[
        "sure", "okay", "ok", "of course", "certainly", "alright", "all right", "absolutely",
        "got it", "i see", "i understand", "understood", "no problem", "you're welcome",
    ],
)  # fmt: skip


FRENCH = Lexicon(
    backchannels=[
        "oui", "ouais", "d'accord", "ok", "okay", "mh", "mhm", "hm", "ah", "oh", "bien", "très bien",
        "parfait", "entendu", "je vois", "voilà", "exactement", "c'est ça", "c'est bon", "bon",
        "super", "merci",
        "ah bon", "ah oui", "oui oui", "bien sûr", "tout à fait", "en effet",
    ],
    fillers=["euh", "heu", "ben", "bah", "hum", "hein", "bon", "enfin", "du coup", "genre", "quoi"],
    continuations=[
        "et", "ou", "mais", "donc", "car", "parce que", "pour", "de", "du", "des", "le", "la", "les",
        "un", "une", "à", "au", "aux", "en", "dans", "sur", "avec", "sans", "chez", "par", "que",
        "qui", "si", "mon", "ma", "mes", "ton", "ta", "votre", "vos", "notre", "nos", "ce", "cette",
        "je", "j'ai", "je suis", "je voudrais", "il", "elle", "on", "nous", "vous", "est", "suis",
        "voudrais", "vers", "avant", "après", "entre", "quand", "comme", "aussi", "plutôt",
    ],
    interruptions=["stop", "attendez", "attends", "arrêtez", "excusez-moi"],
    acknowledgements=[
        "d'accord", "bien sûr", "entendu", "très bien", "certainement", "je vois", "je comprends",
    ],
)  # fmt: skip
