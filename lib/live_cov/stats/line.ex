defmodule LiveCov.Stats.Line do
  @moduledoc """
  One line of a source file in a coverage report.

    * `coverage` - `nil` when the line is not executable (or ignored with a
      `coveralls-ignore-*` comment), otherwise the line's execution count
      (`0` means executable but never run).
    * `source` - the text of the line, without the line terminator.

  The line number is the 1-based position of the line in
  `LiveCov.Stats.Source.source`.
  """

  defstruct coverage: nil, source: ""

  @type t :: %__MODULE__{coverage: nil | non_neg_integer(), source: String.t()}
end
