#!/usr/bin/env python3
"""Writes the demo corpus: one English document per line from WordNet 3.0.

Why WordNet (Debian package wordnet-base): ~117,000 synsets of clean, edited English
prose (definitions and usage examples), a permissive license (Princeton WordNet
license, free for any use with the copyright notice kept), 6 MB to download, and
plain text that needs no markup stripping (dict-gcide, the other candidate, is 40 MB
of dictionary markup whose cleaning would be most of the work and of the risk).

Each synset becomes "lemma, lemma: gloss", e.g.
    dog, domestic dog, Canis familiaris: a member of the genus Canis ...
The order is the files' order (noun, verb, adj, adv); `ratrain tokenize` draws the
validation split per line, so order does not bias it.
Usage: wordnet_corpus.py [WORDNET_DIR] OUTPUT.txt
"""
import os
import re
import sys

PARTS = ("noun", "verb", "adj", "adv")
ADJ_MARKER = re.compile(r"\((a|p|ip)\)$")  # syntactic markers on adjective lemmas


def synset_document(line):
    """Parses one data.* line (see wndb(5WN)); returns None for license lines."""
    if line.startswith("  "):
        return None
    head, sep, gloss = line.partition(" | ")
    if not sep:
        return None
    fields = head.split()
    word_count = int(fields[3], 16)
    words = [ADJ_MARKER.sub("", fields[4 + 2 * i]).replace("_", " ") for i in range(word_count)]
    return "%s: %s" % (", ".join(words), gloss.strip())


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-1])
    wordnet_dir = argv[1] if len(argv) == 3 else "/usr/share/wordnet"
    output = argv[-1]
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    count = 0
    with open(output, "w", encoding="utf-8") as out:
        for part in PARTS:
            path = os.path.join(wordnet_dir, "data." + part)
            if not os.path.exists(path):
                sys.exit("wordnet_corpus.py: %s not found (install the wordnet-base package)" % path)
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    doc = synset_document(line)
                    if doc:
                        out.write(doc + "\n")
                        count += 1
    print("wordnet_corpus.py: wrote %d documents to %s" % (count, output))


if __name__ == "__main__":
    main(sys.argv)
