defmodule LiveCov.Stats.Source do
  @moduledoc """
  Coverage of one source file (all modules compiled from it, combined).

  Fields (the first six mirror ex_integration_coveralls / excoveralls):

    * `filename` - display name: relative to the `:root` option when the file is
      under it, otherwise the (mapped) absolute path.
    * `coverage` - `hits / (hits + misses) * 100`, one decimal (see `LiveCov.Stats`).
    * `sloc` - number of relevant (executable, not ignored) lines: `hits + misses`.
    * `hits` - relevant lines executed at least once.
    * `misses` - relevant lines never executed.
    * `source` - `[%LiveCov.Stats.Line{}]`, one per line of the file.
    * `path` - the absolute path the source was read from (after path mapping).
    * `compile_path` - the path recorded at compile time (before mapping).
    * `modules` - modules compiled from this file, sorted.
    * `functions` - `[%{module: atom, name: String.t(), line: pos_integer, count: non_neg_integer}]`,
      one per `{module, name}`, sorted by line. Input entries for the same function
      on different lines (one per clause) are merged: first line, summed counts;
      duplicates on the same line count once (max). Entries on an ignored line are
      dropped.
    * `missing_source?` - `true` when the file could not be read; `source` then
      holds `""` text for every line up to the highest line with data.
    * `digest` - lowercase hex MD5 of the file bytes as read (for a missing file:
      of the reconstructed text).
    * `trailing_newline?` - whether the file ended with a newline (lets formats
      reproduce the file text exactly).
  """

  defstruct filename: nil,
            coverage: 0.0,
            sloc: 0,
            hits: 0,
            misses: 0,
            source: [],
            path: nil,
            compile_path: nil,
            modules: [],
            functions: [],
            missing_source?: false,
            digest: nil,
            trailing_newline?: true

  @type function_info :: %{
          module: atom(),
          name: String.t(),
          line: pos_integer(),
          count: non_neg_integer()
        }

  @type t :: %__MODULE__{
          filename: String.t(),
          coverage: float(),
          sloc: non_neg_integer(),
          hits: non_neg_integer(),
          misses: non_neg_integer(),
          source: [LiveCov.Stats.Line.t()],
          path: String.t(),
          compile_path: String.t(),
          modules: [atom()],
          functions: [function_info()],
          missing_source?: boolean(),
          digest: String.t(),
          trailing_newline?: boolean()
        }

  @doc """
  The file text as reported: the lines joined with `"\\n"`, plus a final newline
  when the original file had one.
  """
  @spec text(t()) :: String.t()
  def text(%__MODULE__{source: lines, trailing_newline?: nl?}) do
    body = lines |> Enum.map(& &1.source) |> Enum.join("\n")
    if nl? and lines != [], do: body <> "\n", else: body
  end
end
