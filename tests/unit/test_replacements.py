"""What stands in a gone leaf's place (kernlab.verify.replacements): a callee replaces a leaf only when their names
share enough words. (On the recorded 6.12 run: tests/recorded/test_replacements.py.)"""

from __future__ import annotations

from collections import Counter

from kernlab.verify import replacements


def test_a_callee_replaces_a_leaf_only_when_they_share_two_words_beyond_page_and_folio() -> None:
    # 6.12's callees of __handle_mm_fault in the recorded window, with their calls
    callees = Counter({"folio_add_new_anon_rmap": 356, "folio_add_lru_vma": 529, "pte_offset_map_nolock": 500,
                       "__vmf_anon_prepare": 450, "pte_mkwrite": 440, "do_wp_page": 30})
    assert replacements.words("folio_add_new_anon_rmap") == {"add", "new", "anon", "rmap"}
    assert replacements.best_match("page_add_new_anon_rmap", callees) == "folio_add_new_anon_rmap"
    assert replacements.best_match("lru_cache_add_inactive_or_unevictable", callees) == "folio_add_lru_vma"
    # one shared word is not a replacement: "page" and "folio" do not count, "anon" alone is not enough
    assert replacements.best_match("page_anon_lock", callees) is None
    assert replacements.best_match("put_page", callees) is None
