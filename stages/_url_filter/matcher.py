"""`url_filter`'s decision on each URL: allowlists first, then listed domains (a registered
domain covers all its sub-domains), listed URLs, and words inside the URL.

Domains are matched level by level from the registered domain (`example.co.uk`, found with
the Public Suffix List's ICANN section, the copy bundled in `publicsuffixlist`: nothing is
downloaded) down to the full host, so `a.b.example.co.uk` is caught by `example.co.uk`,
`b.example.co.uk` or itself, `notexample.com` never by `example.com`, and an entry that is
a public suffix (`co.uk`) by nothing. Private suffixes count as domains: `blogspot.com` on a
list blocks every blog under it, `someone.blogspot.com` only that one. An IP address
matches only itself. What is decided about a host is kept (bounded), since pages of one
host come together in a crawl; the new hosts of a batch are looked up together.

URL words are runs of letters and digits of the percent-decoded, case-folded URL, as in
DataTrove's URLFilter: a banned word rejects, `soft_word_threshold` distinct soft words
reject, and a banned sub-word rejects when it occurs anywhere in the URL with everything but
letters and digits removed (`freeXXXtube` -> `freexxxtube`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import ahocorasick
import numpy as np
from publicsuffixlist import PublicSuffixList

from pipeline.stage import reason
from stages._url_filter.lists import EntrySet
from stages._url_filter.urls import MAX_HOST, ParsedUrl, parse_url

MAX_SHOWN = 200  # a listed URL longer than this is cut in the reason
HOST_CACHE = 100_000  # hosts whose facts are kept; then the cache starts again
_URL_WORD = re.compile(r"[^\W_]+")  # letters and digits
_NOT_ALNUM = re.compile(r"[\W_]+")


def word_form(word: str) -> str:
    """A list's word as URL words are compared: case-folded letters and digits only."""
    return _NOT_ALNUM.sub("", word.casefold())


@dataclass(frozen=True)
class UrlLists:
    """Everything `prepare` reads from the config's lists, shared with every worker."""

    block: EntrySet = field(default_factory=EntrySet)
    allow: EntrySet = field(default_factory=EntrySet)
    banned_words: frozenset[str] = frozenset()
    soft_words: frozenset[str] = frozenset()
    banned_subwords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    reason: str | None = None
    allowlisted: bool = False
    unparsed: bool = False  # no host could be read: only the word rules applied


KEEP, ALLOWED = Verdict(), Verdict(allowlisted=True)


@dataclass(frozen=True)
class HostFacts:
    allowed: bool
    blocked_domain: str | None
    allowed_urls: bool  # the host has listed URLs on that side
    blocked_urls: bool


class UrlMatcher:
    def __init__(self, lists: UrlLists, soft_word_threshold: int):
        self.lists = lists
        self.soft_word_threshold = soft_word_threshold
        self.suffixes = PublicSuffixList(only_icann=True)
        self.hosts: dict[str, HostFacts] = {}
        self.subwords = None
        if lists.banned_subwords:
            self.subwords = ahocorasick.Automaton()
            for word in lists.banned_subwords:
                self.subwords.add_word(word, word)
            self.subwords.make_automaton()

    def check(self, urls: list[str]) -> list[Verdict]:
        """One verdict per URL. The hosts of a batch are looked up together: one vectorised
        hash and search over all their domain levels."""
        parsed = [parse_url(url) for url in urls]
        hosts = {p.host for p in parsed if p is not None}
        new = hosts - self.hosts.keys()
        if len(self.hosts) + len(new) > HOST_CACHE:
            self.hosts.clear()
            new = hosts
        self.learn_hosts(new)
        verdicts = []
        for url, where in zip(urls, parsed):
            verdict = self._by_lists(where) if where is not None else None
            if verdict is None:
                why = self._by_words(url)
                verdict = Verdict(why, unparsed=where is None) \
                    if why is not None or where is None else KEEP
            verdicts.append(verdict)
        return verdicts

    def _by_lists(self, url: ParsedUrl) -> Verdict | None:
        facts = self.hosts[url.host]
        if facts.allowed or (facts.allowed_urls and url.key in self.lists.allow.urls):
            return ALLOWED
        if facts.blocked_domain is not None:
            return Verdict(reason("url_blocklist", "domain", facts.blocked_domain))
        if facts.blocked_urls and url.key in self.lists.block.urls:
            shown = url.key if len(url.key) <= MAX_SHOWN else url.key[:MAX_SHOWN] + "…"
            return Verdict(reason("url_blocklist", "url", shown))
        return None

    def learn_hosts(self, hosts: set[str]) -> None:
        if not hosts:
            return
        hosts = sorted(hosts)
        levels = [self.levels(host) for host in hosts]
        flat = [level for of_host in levels for level in of_host]
        block, allow = self.lists.block, self.lists.allow
        owner = np.repeat(np.arange(len(hosts)), [len(of_host) for of_host in levels])
        allowed = set(owner[allow.domains.contains(flat)].tolist())
        blocked: dict[int, str] = {}
        for at in np.flatnonzero(block.domains.contains(flat)).tolist():
            blocked.setdefault(int(owner[at]), flat[at])  # levels go broadest first
        allowed_urls = allow.url_hosts.contains(hosts).tolist()
        blocked_urls = block.url_hosts.contains(hosts).tolist()
        for number, host in enumerate(hosts):
            self.hosts[host] = HostFacts(number in allowed, blocked.get(number),
                                         allowed_urls[number], blocked_urls[number])

    def levels(self, host: str) -> list[str]:
        """The host's domains, broadest first: its registered domain ... the host itself."""
        if ":" in host or host.rpartition(".")[2].isdigit():  # an IP address, or no DNS name
            return [host]
        registered = self.suffixes.privatesuffix(host)
        if registered is None or registered == host:
            return [host]
        if len(host) > MAX_HOST:  # not a DNS name: its registered domain and itself only
            return [registered, host]
        levels = [registered]
        for label in reversed(host[:-len(registered) - 1].split(".")):
            levels.append(f"{label}.{levels[-1]}")
        return levels

    def _by_words(self, url: str) -> str | None:
        lists = self.lists
        if not (lists.banned_words or lists.soft_words or self.subwords):
            return None
        in_order = _URL_WORD.findall(unquote(url).casefold())
        words = set(in_order)
        if not words.isdisjoint(lists.banned_words):
            return reason("url_word", "word", min(words & lists.banned_words))
        if lists.soft_words:
            soft = len(words & lists.soft_words)
            if soft >= self.soft_word_threshold:
                return reason("url_soft_words", "count", soft)
        if self.subwords is not None:
            # the URL with everything but letters and digits removed
            for _, word in self.subwords.iter("".join(in_order)):
                return reason("url_subword", "word", word)
        return None
