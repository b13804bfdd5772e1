// The naming scheme both kinds of segment file share: `<prefix>_inprogress_<first>` while written and
// `<prefix>_<first>-<last>` once closed, numbers zero-padded so names sort in order. Journal segments use
// Hadoop's ("edits", 19 digits); the Raft log its own ("log", 20 digits).

export interface SegmentNaming {
  inProgress(first: number): string;
  closed(first: number, last: number): string;
  /** The numbers a name carries (last is null while in progress); null for any other name. */
  parse(name: string): { first: number; last: number | null } | null;
}

export function segmentNaming(prefix: string, digits: number): SegmentNaming {
  const pad = (n: number) => String(n).padStart(digits, '0');
  const inProgressRe = new RegExp(`^${prefix}_inprogress_(\\d{${digits}})$`);
  const closedRe = new RegExp(`^${prefix}_(\\d{${digits}})-(\\d{${digits}})$`);
  return {
    inProgress: (first) => `${prefix}_inprogress_${pad(first)}`,
    closed: (first, last) => `${prefix}_${pad(first)}-${pad(last)}`,
    parse(name) {
      const open = inProgressRe.exec(name);
      if (open) return { first: Number(open[1]), last: null };
      const closed = closedRe.exec(name);
      return closed ? { first: Number(closed[1]), last: Number(closed[2]) } : null;
    },
  };
}
