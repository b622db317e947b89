"""Chat prompts to token ids such that no special-token id can come from item text.

Item titles and texts (and generated summaries) are data. `tokenizer.encode(rendered_text)`
would turn a special-token string inside a title (`<|im_end|>`, `<|eot_id|>`, `</s>`, any
token the tokenizer added) into that special token, whatever was done to the string before,
so two things happen here, for any tokenizer and chat template:

1. `mark(text)`: every special and added token string of this tokenizer is removed from the
   text (until none is left: removing one cannot join two halves into another), and the
   text is put between two private-use characters that delimit data in the rendered prompt.
2. `encode(rendered)`: the rendered prompt is cut at those delimiters; template parts are
   tokenised normally (their special tokens are the template's), data parts with
   `split_special_tokens=True`, so even a token string that survived step 1 is spelled out
   as ordinary text. The delimiters themselves never reach the model.

Tokenising the parts apart changes the merges only at the delimiters, where the quoted
data's `"` sits; the same function builds every prompt (stages and their tests alike).
"""

from __future__ import annotations

from typing import Any

from udfs.prompts import DATA_CLOSE, DATA_OPEN, strip_tokens


class PromptEncoder:
    def __init__(self, tok: Any) -> None:
        self.tok = tok
        added = getattr(tok, "added_tokens_decoder", {}) or {}
        reserved = {*tok.all_special_tokens, *(t.content for t in added.values())}
        self.reserved = sorted((t for t in reserved if t), key=len, reverse=True)
        self.special_ids = set(tok.all_special_ids) | set(added)

    def mark(self, text: str) -> str:
        """Data for a prompt: reserved token strings removed, between the data delimiters."""
        return DATA_OPEN + strip_tokens(text, self.reserved) + DATA_CLOSE

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        """Rendered text -> ids; data parts can hold no special-token id."""
        pieces = text.split(DATA_OPEN)
        ids = self._ids(pieces[0], data=False)
        for piece in pieces[1:]:
            data, sep, rest = piece.partition(DATA_CLOSE)
            if not sep:
                raise ValueError("a data part of the prompt is not closed")
            ids += self._ids(data, data=True) + self._ids(rest, data=False)
        return ids

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.encode(self.render(messages))

    def _ids(self, text: str, *, data: bool) -> list[int]:
        if not text:
            return []
        if DATA_CLOSE in text:
            raise ValueError("a data delimiter outside a data part of the prompt")
        return self.tok.encode(text, add_special_tokens=False, split_special_tokens=data)
