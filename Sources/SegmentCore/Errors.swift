// Shared vocabulary of every module: the exit-code table and the protocol of user-facing errors.
// The table is documented in README.md ("Exit codes"); change both together.

/// Process exit codes of `segment`, one per kind of failure a script may want to branch on.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case success = 0
    case internalError = 1      // a bug: please report it with the command line
    case usage = 2              // bad flags or arguments
    case invalidInput = 3       // an input image / checkpoint / reference cannot be read or is invalid
    case invalidModel = 4       // the model file is missing, corrupt or does not match its architecture
    case outputNotWritable = 5  // an output cannot be written (nothing half-written is left)
    case partialFailure = 6     // a batch finished but some cases failed (the report lists them)
}

/// An error meant for the user: says what is wrong with which file, and what to do next.
public protocol SegmentError: Error, CustomStringConvertible {
    /// The exit code a CLI run ending on this error returns.
    var exitCode: ExitStatus { get }
}
