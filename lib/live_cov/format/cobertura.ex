defmodule LiveCov.Format.Cobertura do
  @moduledoc false
  # Cobertura XML (`coverage-04.dtd` shape), as read by pycobertura, GitLab,
  # Jenkins and Azure DevOps.
  #
  # * `<coverage>` carries `line-rate`, `lines-covered`, `lines-valid` (the
  #   report totals), zero branch figures, `version` and `timestamp` (ms);
  # * `<sources><source>` is the report root (`:root` of `LiveCov.Stats.build/2`);
  # * one `<package>` per directory (`lib/report_app` → `lib.report_app`), one
  #   `<class>` per source file (`name` = its module(s), `filename` = the display
  #   filename, relative to the source root);
  # * `<methods>` lists the input functions, each with its first line;
  #   `<lines>` lists every relevant line with `hits` and `branch="false"`.
  #
  # Options: `:version` (default `"LiveCov"`).

  @behaviour LiveCov.Format

  import LiveCov.Format.Text, only: [escape_xml: 1]

  @impl true
  def name, do: :cobertura
  @impl true
  def extension, do: "xml"
  @impl true
  def filename, do: "cobertura.xml"

  @impl true
  def render(%LiveCov.Stats{} = stats, opts \\ []) do
    version = opts |> Keyword.get(:version, "LiveCov") |> to_string() |> escape_xml()
    ts = stats.generated_at |> Kernel.||(DateTime.utc_now()) |> DateTime.to_unix(:millisecond)

    packages =
      stats.files
      |> Enum.group_by(&package_name/1)
      |> Enum.sort_by(&elem(&1, 0))

    [
      ~s(<?xml version="1.0" ?>\n),
      "<!-- Based on https://raw.githubusercontent.com/cobertura/web/master/htdocs/xml/coverage-04.dtd -->\n",
      ~s(<coverage line-rate="),
      rate(stats.hits, stats.sloc),
      ~s(" branch-rate="0" lines-covered="),
      Integer.to_string(stats.hits),
      ~s(" lines-valid="),
      Integer.to_string(stats.sloc),
      ~s(" branches-covered="0" branches-valid="0" complexity="0" version="),
      version,
      ~s(" timestamp="),
      Integer.to_string(ts),
      ~s(">\n\t<sources>\n\t\t<source>),
      escape_xml(stats.root || "."),
      "</source>\n\t</sources>\n\t<packages>\n",
      Enum.map(packages, &package/1),
      "\t</packages>\n</coverage>\n"
    ]
  end

  defp package({name, files}) do
    hits = Enum.reduce(files, 0, &(&1.hits + &2))
    sloc = Enum.reduce(files, 0, &(&1.sloc + &2))

    [
      ~s(\t\t<package name="),
      escape_xml(name),
      ~s(" line-rate="),
      rate(hits, sloc),
      ~s(" branch-rate="0" complexity="0">\n\t\t\t<classes>\n),
      Enum.map(files, &class/1),
      "\t\t\t</classes>\n\t\t</package>\n"
    ]
  end

  defp class(f) do
    [
      ~s(\t\t\t\t<class name="),
      escape_xml(class_name(f)),
      ~s(" filename="),
      escape_xml(f.filename),
      ~s(" line-rate="),
      rate(f.hits, f.sloc),
      ~s(" branch-rate="0" complexity="0">\n\t\t\t\t\t<methods>\n),
      Enum.map(f.functions, &method(&1, length(f.modules) > 1)),
      "\t\t\t\t\t</methods>\n\t\t\t\t\t<lines>\n",
      lines(f.source),
      "\t\t\t\t\t</lines>\n\t\t\t\t</class>\n"
    ]
  end

  defp method(fun, qualify?) do
    name = if qualify?, do: LiveCov.Format.Text.qualified_name(fun), else: fun.name

    {name, signature} =
      case String.split(name, "/", parts: 2) do
        [n, arity] -> {n, "/" <> arity}
        [n] -> {n, ""}
      end

    hit = if fun.count > 0, do: "1", else: "0"

    [
      ~s(\t\t\t\t\t\t<method name="),
      escape_xml(name),
      ~s(" signature="),
      escape_xml(signature),
      ~s(" line-rate="),
      hit,
      ~s(" branch-rate="0" complexity="0">\n\t\t\t\t\t\t\t<lines>\n\t\t\t\t\t\t\t\t<line number="),
      Integer.to_string(fun.line),
      ~s(" hits="),
      Integer.to_string(fun.count),
      ~s(" branch="false"/>\n\t\t\t\t\t\t\t</lines>\n\t\t\t\t\t\t</method>\n)
    ]
  end

  defp lines(lines) do
    {out, _} =
      Enum.map_reduce(lines, 1, fn
        %{coverage: nil}, n ->
          {[], n + 1}

        %{coverage: c}, n ->
          {[
             ~s(\t\t\t\t\t\t<line number="),
             Integer.to_string(n),
             ~s(" hits="),
             Integer.to_string(c),
             ~s(" branch="false"/>\n)
           ], n + 1}
      end)

    out
  end

  defp class_name(%{modules: []} = f), do: f.filename

  defp class_name(%{modules: mods}),
    do: Enum.map_join(mods, ",", &LiveCov.Stats.Ignore.module_name/1)

  defp package_name(f) do
    case Path.dirname(f.filename) do
      "." -> "."
      dir -> dir |> String.trim_leading("/") |> String.replace("/", ".")
    end
  end

  defp rate(_hits, 0), do: "1"
  defp rate(hits, total), do: :erlang.float_to_binary(hits / total, [:short])
end
