// Types for the parts of fs-ext (native flock) this project uses.
declare module 'fs-ext' {
  export function flockSync(fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void;
  export function flock(
    fd: number,
    flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un',
    callback: (err: NodeJS.ErrnoException | null) => void,
  ): void;
}
