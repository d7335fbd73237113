"""Bring each addon's translations up to date with its freshly exported .pot.

    python setup/i18n_merge.py ADDON_DIR [ADDON_DIR ...]

For every ``ADDON_DIR/i18n/<lang>.po``: new terms are added untranslated, terms that left
the code are dropped, and a new term left untranslated takes the translation the same
English text has in any of the given addons (a template moved from one addon to another
keeps its Swahili). Header and translator comments (the glossary) are kept. Run by
setup/i18n.sh after Odoo exported the .pot files (polib comes with
oca-odoo-pre-commit-hooks).
"""

import pathlib
import sys

import polib


def known_translations(addon_dirs):
    """{(lang, msgctxt, msgid): msgstr} over every .po of the addons, obsolete ones too."""
    memory = {}
    for addon in addon_dirs:
        for po_path in sorted((addon / "i18n").glob("*.po")):
            for entry in polib.pofile(str(po_path)):
                if entry.msgstr and "fuzzy" not in entry.flags:
                    key = (po_path.stem, entry.msgctxt, entry.msgid)
                    memory.setdefault(key, entry.msgstr)
    return memory


def merge(po_path, pot, memory):
    po = polib.pofile(str(po_path), wrapwidth=78)
    po.merge(pot)
    for entry in po.obsolete_entries():
        po.remove(entry)
    filled = 0
    for entry in po.untranslated_entries():
        msgstr = memory.get((po_path.stem, entry.msgctxt, entry.msgid))
        if msgstr:
            entry.msgstr = msgstr
            filled += 1
    po.save()
    untranslated = len(po.untranslated_entries())
    print(f"{po_path}: {len(po)} terms, {untranslated} untranslated, {filled} reused")


def main(argv):
    addon_dirs = [pathlib.Path(arg) for arg in argv]
    memory = known_translations(addon_dirs)
    for addon in addon_dirs:
        pot_path = addon / "i18n" / f"{addon.name}.pot"
        if not pot_path.exists():
            continue
        pot = polib.pofile(str(pot_path))
        for po_path in sorted((addon / "i18n").glob("*.po")):
            merge(po_path, pot, memory)


if __name__ == "__main__":
    main(sys.argv[1:])
