// Who may read a node's files: only the user it runs as. Edit records are the metadata of the masters' file
// systems, and the Raft log holds every one of them: data directories are 0700, the files in them 0600,
// given explicitly wherever one is created (not left to the process umask), tightened at start for a
// directory created otherwise, and inherited by hard links (the same inode) and renames.

/** Every directory a node creates. */
export const PRIVATE_DIR_MODE = 0o700;
/** Every file a node creates (segments, the Raft log and metadata, snapshot manifests, the lock, logs). */
export const PRIVATE_FILE_MODE = 0o600;
/** The umask a JournalNode process runs with: whatever it creates without a mode is private too. */
export const PRIVATE_UMASK = 0o077;
