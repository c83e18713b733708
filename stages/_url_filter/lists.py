"""Reading `url_filter`'s lists: files of domains and URLs, and UT1-style folders of them.

A list file holds one entry per line (`#` comments, stages/_shared/list_files.py). An entry
is a URL when it has a `/` (`example.com/page`, `https://example.com/page`), else a domain,
written in any of the forms blocklists are published in: `example.com`, `*.example.com`,
`.example.com`, adblock `||example.com^` (OISD's "abp" lists) or a hosts-file line
`0.0.0.0 example.com`.

A folder is read as UT1's blacklists are laid out: `<folder>/<category>/domains` and
`<category>/urls` (other files, such as `expressions`, are not read); a folder that holds
`domains` or `urls` itself is one category.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stages._shared.hashed_set import HashedSet, HashedSetBuilder
from stages._shared.list_files import list_entries
from stages._url_filter.urls import is_ip, normalise_host, parse_url

UT1_FILES = ("domains", "urls")


@dataclass(frozen=True)
class EntrySet:
    """Domains and exact URLs of one side (block or allow), read from all its lists."""

    domains: HashedSet = field(default_factory=HashedSet)
    urls: HashedSet = field(default_factory=HashedSet)
    # Hosts that have at least one listed URL: a URL whose host has none skips that lookup.
    url_hosts: HashedSet = field(default_factory=HashedSet)

    def __bool__(self) -> bool:
        return bool(len(self.domains) or len(self.urls))


def read_entry_set(paths: list[str], categories: list[str] | None) -> EntrySet:
    domains, urls, url_hosts = HashedSetBuilder(), HashedSetBuilder(), HashedSetBuilder()
    for path in list_files(paths, categories):
        for line in list_entries(path):
            entry = entry_text(line)
            if "/" in entry:
                parsed = parse_url(entry)
                if parsed is not None:
                    urls.add(parsed.key)
                    url_hosts.add(parsed.host)
            else:
                host = normalise_host(entry.lstrip("*").lstrip("."))
                if host is not None:
                    domains.add(host)
    return EntrySet(domains.build(), urls.build(), url_hosts.build())


def entry_text(line: str) -> str:
    """The domain or URL a list line names, whatever the list's format."""
    if line.startswith("||"):  # adblock: ||example.com^ or ||example.com^$third-party
        return line[2:].partition("^")[0]
    fields = line.split()
    if len(fields) > 1 and is_ip(fields[0]):  # hosts file: 0.0.0.0 example.com
        return fields[1]
    return fields[0]


def list_files(paths: list[str], categories: list[str] | None) -> list[str]:
    """The list files behind `paths`: a file as it is, a folder as its categories' files."""
    files = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        for category, folder in folder_categories(path).items():
            if categories is None or category in categories:
                files += [os.path.join(folder, name) for name in UT1_FILES
                          if os.path.isfile(os.path.join(folder, name))]
    return files


def folder_categories(path: str) -> dict[str, str]:
    """{category: its folder} of a UT1-style folder (itself, when it holds the lists)."""
    if any(os.path.isfile(os.path.join(path, name)) for name in UT1_FILES):
        return {os.path.basename(os.path.normpath(path)): path}
    found = {}
    for name in sorted(os.listdir(path)):
        folder = os.path.join(path, name)
        if os.path.isdir(folder) and any(os.path.isfile(os.path.join(folder, f))
                                         for f in UT1_FILES):
            found[name] = folder
    return found
