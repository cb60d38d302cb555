"""Units kernlab converts with: one definition each."""

MIB = 1 << 20  # bytes in a mebibyte (zram's mm_stat, meminfo's kB / 1024, plots, disk room)
