defmodule LiveCov.Instrument.Munge do
  @moduledoc false
  # The pure, cover-identical rewrite of a module's abstract code.
  #
  # `transform/2` walks the forms the way OTP 25.2's `cover` does when it
  # cover-compiles a module and leaves a placeholder `{:BUMP, line, index}` at
  # every spot where cover would bump a counter (the anno is the bare line
  # integer, as in cover). Patched with cover's own counter expression, the
  # result compiles to a beam byte-identical to cover's. It returns, next to the
  # rewritten forms:
  #
  #   * `sites` - one `{function, arity, clause, line}` per counter, in index
  #     order (index 0 is the first element). Cover numbers the same counters
  #     from 1, so cover's index is ours + 1.
  #   * `clauses` - cover's per-clause table: `{function, arity, clause, nlines}`
  #     for every function clause of the main file, in source order, including
  #     clauses without any executable line.
  #
  # `patch/2` then replaces each placeholder by a real expression (for
  # LiveCov, a call to `LiveCov.Native.bump/2`).
  #
  # ## The rules, briefly
  #
  #   * Only functions in the main file (the first `-file` attribute) are
  #     instrumented; after a `-file` naming another file (an include) the
  #     rewrite is switched off until the main file comes back. A
  #     `-compile({parse_transform, _})` attribute is dropped so the parse
  #     transform does not run twice.
  #   * `andalso`/`orelse` in bodies are first rewritten into `case`
  #     (`LiveCov.Instrument.Expand`).
  #   * In every body (function, case/if/receive/try/maybe clauses, funs,
  #     blocks) each expression whose line was not yet bumped on the current
  #     path through the function clause gets a bump before it; branches
  #     (clauses) are alternatives, so each may bump the same line.
  #   * A comprehension's template is wrapped in a block. When a qualifier's
  #     own expression does not add exactly one new bump, a `begin true end`
  #     filter is put in front of it, carrying a bump if its line (the line of
  #     the generator's or filter's expression) is not bumped yet.
  #   * When an expression shares its line with the one after it and only some
  #     branches of the earlier (multi-clause) expression bumped that line, the
  #     remaining branches get an extra bump of that line at their end.
  #   * Counter indices are allocated in traversal order, one per unique
  #     `{function, arity, clause, line}`, where `clause` is the number of the
  #     enclosing *function* clause (1-based).
  #
  # Pure: no processes, no ETS, no side effects.

  alias LiveCov.Instrument.Expand

  @type form :: tuple()
  @type site :: {atom(), arity(), pos_integer(), non_neg_integer()}
  @type clause_info :: {atom(), arity(), pos_integer(), non_neg_integer()}

  @doc """
  Rewrites `forms` (as returned by `LiveCov.Instrument.Forms.fetch/1`) of
  `module`, leaving `{:BUMP, line, index}` placeholders.

  Returns `{:ok, munged_forms, sites, clauses}`, or
  `{:error, {kind, message}}` when the forms cannot be processed (no `-file`
  attribute, malformed abstract code).
  """
  @spec transform([form()], module()) ::
          {:ok, [form()], [site()], [clause_info()]} | {:error, {atom(), String.t()}}
  def transform(forms, module) when is_list(forms) and is_atom(module) do
    case main_file(forms) do
      {:ok, main} ->
        state = %{
          function: nil,
          arity: nil,
          clause: nil,
          lines: [],
          no_bump_lines: [],
          depth: 1,
          is_guard: false,
          init_info: [],
          # counter allocation (cover keeps this in its mapping ETS table)
          index: %{},
          sites: [],
          next: 0
        }

        try do
          {munged, state} = transform_forms(forms, [], state, main, :on)
          {:ok, munged, Enum.reverse(state.sites), Enum.reverse(state.init_info)}
        rescue
          e ->
            {:error,
             {:bad_forms,
              "could not instrument the abstract code of #{inspect(module)}: " <>
                Exception.message(e) <> "; the module's debug_info looks malformed"}}
        end

      :error ->
        {:error,
         {:no_file_attribute,
          "the abstract code of #{inspect(module)} has no -file attribute; " <>
            "recompile it from source with debug_info"}}
    end
  end

  def transform(_forms, module) do
    {:error,
     {:bad_forms, "expected a list of abstract forms and a module atom, got #{inspect(module)}"}}
  end

  @doc """
  Replaces every `{:BUMP, anno, index}` placeholder in `munged_forms` by
  `fun.(index)` or `fun.(index, line)`, which must return an abstract expression. Attributes are
  left untouched.
  """
  @spec patch(
          [form()],
          (non_neg_integer() -> tuple()) | (non_neg_integer(), integer() -> tuple())
        ) ::
          [form()]
  def patch(munged_forms, fun) when is_function(fun, 1),
    do: patch(munged_forms, fn index, _line -> fun.(index) end)

  def patch(munged_forms, fun) when is_function(fun, 2),
    do: LiveCov.Instrument.Walk.replace_markers(munged_forms, :BUMP, &fun.(&2, line_of(&1)))

  defp line_of(anno), do: :erl_anno.line(anno)

  @doc "The main source file: the file named by the first `-file` attribute."
  @spec main_file([form()]) :: {:ok, charlist()} | :error
  def main_file(forms) do
    Enum.find_value(forms, :error, fn
      {:attribute, _, :file, {file, _}} -> {:ok, file}
      _ -> nil
    end)
  end

  ## Forms

  defp transform_forms([form | rest], acc, state, main, switch) do
    case munge_form(Expand.form(form), state, main, switch) do
      :ignore -> transform_forms(rest, acc, state, main, switch)
      {munged, state, switch} -> transform_forms(rest, [munged | acc], state, main, switch)
    end
  end

  defp transform_forms([], acc, state, _main, _switch), do: {Enum.reverse(acc), state}

  defp munge_form({:function, anno, name, arity, clauses}, state, _main, :on) do
    state = %{
      state
      | function: name,
        arity: arity,
        clause: 1,
        lines: [],
        no_bump_lines: [],
        depth: 1
    }

    {clauses, state} = munge_clauses(clauses, state)
    {{:function, anno, name, arity, clauses}, state, :on}
  end

  defp munge_form({:attribute, _, :file, {main, _}} = form, state, main, _switch),
    do: {form, state, :on}

  defp munge_form({:attribute, _, :file, {_included, _}} = form, state, _main, _switch),
    do: {form, state, :off}

  defp munge_form({:attribute, _, :compile, {:parse_transform, _}}, _state, _main, _switch),
    do: :ignore

  defp munge_form(form, state, _main, switch), do: {form, state, switch}

  ## Clauses and bodies

  defp munge_clauses(clauses, state), do: munge_clauses(clauses, state, state.lines, [])

  defp munge_clauses([{:clause, anno, patterns, guards, body} | rest], state, lines, acc) do
    # Guards are walked for shape only; cover throws their state away
    # (apart from counters, which live outside its state).
    {guards, guard_state} = munge_exprs(guards, %{state | is_guard: true}, [])
    state = keep_counters(state, guard_state)

    case state.depth do
      1 ->
        {body, state2} = munge_body(body, %{state | depth: 2})
        info = {state2.function, state2.arity, state2.clause, length(state2.lines)}

        state3 = %{
          state2
          | init_info: [info | state2.init_info],
            clause: state2.clause + 1,
            lines: [],
            no_bump_lines: [],
            depth: 1
        }

        acc = [{:clause, anno, patterns, guards, body} | acc]
        munge_clauses(rest, state3, state2.lines ++ lines, acc)

      2 ->
        {body, state2} = munge_body(body, state)
        new_lines = new_bumps(state2, state) ++ lines
        acc = [{:clause, anno, patterns, guards, body} | acc]
        munge_clauses(rest, %{state2 | lines: state.lines}, new_lines, acc)
    end
  end

  defp munge_clauses([], state, lines, acc), do: {Enum.reverse(acc), %{state | lines: lines}}

  defp munge_body(exprs, state), do: munge_body(exprs, state, [], [])

  defp munge_body([expr | rest], state, acc, last_bumps) do
    line = :erl_anno.line(elem(expr, 1))

    if line in state.lines do
      {munged, state2} = munge_expr(expr, state)
      bumps = new_bumps(state2, state)
      state3 = %{state2 | no_bump_lines: [line | state.no_bump_lines]}
      {acc, state3} = maybe_fix_last_expr(acc, state3, last_bumps)
      munge_body(rest, state3, [munged | acc], bumps)
    else
      {bump, state} = bump_call(state, line)
      {munged, state2} = munge_expr(expr, %{state | lines: [line | state.lines]})
      bumps = new_bumps(state2, state)
      state3 = %{state2 | no_bump_lines: subtract(state2.no_bump_lines, bumps)}
      {acc, state3} = maybe_fix_last_expr(acc, state3, last_bumps)
      munge_body(rest, state3, [munged, bump | acc], bumps)
    end
  end

  defp munge_body([], state, acc, _last_bumps), do: {Enum.reverse(acc), state}

  ## Extra bump after an expression sharing its line with the next one

  # `acc` is the reversed munged body; its head is the previous expression.
  defp maybe_fix_last_expr([previous | earlier] = acc, state, last_bumps) do
    case common(state.no_bump_lines, last_bumps) do
      [line] ->
        {bump, state} = bump_call(state, line)
        {[fix_expr(previous, line, bump) | earlier], state}

      _ ->
        {acc, state}
    end
  end

  defp maybe_fix_last_expr([], state, _last_bumps), do: {[], state}

  defp fix_expr({:if, anno, clauses}, line, bump),
    do: {:if, anno, fix_clauses(clauses, line, bump)}

  defp fix_expr({:case, anno, expr, clauses}, line, bump),
    do: {:case, anno, fix_expr(expr, line, bump), fix_clauses(clauses, line, bump)}

  defp fix_expr({:receive, anno, clauses}, line, bump),
    do: {:receive, anno, fix_clauses(clauses, line, bump)}

  defp fix_expr({:receive, anno, clauses, timeout, body}, line, bump) do
    clauses = fix_clauses(clauses, line, bump)
    {:receive, anno, clauses, fix_expr(timeout, line, bump), fix_expr(body, line, bump)}
  end

  defp fix_expr({:try, anno, body, clauses, catches, after_body}, line, bump) do
    body = fix_expr(body, line, bump)
    clauses = fix_clauses(clauses, line, bump)
    catches = fix_clauses(catches, line, bump)
    {:try, anno, body, clauses, catches, fix_expr(after_body, line, bump)}
  end

  defp fix_expr([head | tail], line, bump),
    do: [fix_expr(head, line, bump) | fix_expr(tail, line, bump)]

  defp fix_expr(tuple, line, bump) when is_tuple(tuple),
    do: tuple |> Tuple.to_list() |> fix_expr(line, bump) |> List.to_tuple()

  defp fix_expr(other, _line, _bump), do: other

  defp fix_clauses([], _line, _bump), do: []

  defp fix_clauses(clauses, line, bump) do
    if bumps_line?(List.last(clauses), line),
      do: fix_each_clause(clauses, line, bump),
      else: clauses
  end

  # Clauses before the first one that bumps `line` get a bump at their end
  # (keeping the clause's value); from that clause on, they are fixed inside.
  defp fix_each_clause([], _line, _bump), do: []

  defp fix_each_clause([clause | rest] = clauses, line, bump) do
    if bumps_line?(clause, line) do
      Enum.map(clauses, &fix_expr(&1, line, bump))
    else
      {:clause, anno, patterns, guards, body} = clause
      a = :erl_anno.new(0)
      var = {:var, a, String.to_atom("$cover$ " <> Integer.to_string(line))}
      [last | before] = Enum.reverse(body)
      body = Enum.reverse(before, [{:match, a, var, last}, bump, var])
      [{:clause, anno, patterns, guards, body} | fix_each_clause(rest, line, bump)]
    end
  end

  defp bumps_line?({:BUMP, line, _index}, line), do: true
  defp bumps_line?([head | tail], line), do: bumps_line?(head, line) or bumps_line?(tail, line)

  defp bumps_line?(tuple, line) when is_tuple(tuple),
    do: bumps_line?(Tuple.to_list(tuple), line)

  defp bumps_line?(_other, _line), do: false

  ## Expressions

  defp munge_expr({:match, anno, left, right}, state) do
    {left, state} = munge_expr(left, state)
    {right, state} = munge_expr(right, state)
    {{:match, anno, left, right}, state}
  end

  defp munge_expr({:maybe_match, anno, left, right}, state) do
    {left, state} = munge_expr(left, state)
    {right, state} = munge_expr(right, state)
    {{:maybe_match, anno, left, right}, state}
  end

  defp munge_expr({:tuple, anno, exprs}, state) do
    {exprs, state} = munge_exprs(exprs, state, [])
    {{:tuple, anno, exprs}, state}
  end

  defp munge_expr({:record, anno, name, fields}, state) do
    {fields, state} = munge_exprs(fields, state, [])
    {{:record, anno, name, fields}, state}
  end

  defp munge_expr({:record, anno, arg, name, fields}, state) do
    {arg, state} = munge_expr(arg, state)
    {fields, state} = munge_exprs(fields, state, [])
    {{:record, anno, arg, name, fields}, state}
  end

  # A field initialiser in a record construction/update (only the value).
  defp munge_expr({:record_field, anno, field, value}, state) do
    {value, state} = munge_expr(value, state)
    {{:record_field, anno, field, value}, state}
  end

  defp munge_expr({:map, anno, fields}, state) do
    {fields, state} = munge_exprs(fields, state, [])
    {{:map, anno, fields}, state}
  end

  defp munge_expr({:map, anno, arg, fields}, state) do
    {arg, state} = munge_expr(arg, state)
    {fields, state} = munge_exprs(fields, state, [])
    {{:map, anno, arg, fields}, state}
  end

  defp munge_expr({kind, anno, key, value}, state)
       when kind in [:map_field_assoc, :map_field_exact, :cons] do
    {key, state} = munge_expr(key, state)
    {value, state} = munge_expr(value, state)
    {{kind, anno, key, value}, state}
  end

  defp munge_expr({:op, anno, op, left, right}, state) do
    {left, state} = munge_expr(left, state)
    {right, state} = munge_expr(right, state)
    {{:op, anno, op, left, right}, state}
  end

  defp munge_expr({:op, anno, op, expr}, state) do
    {expr, state} = munge_expr(expr, state)
    {{:op, anno, op, expr}, state}
  end

  defp munge_expr({:catch, anno, expr}, state) do
    {expr, state} = munge_expr(expr, state)
    {{:catch, anno, expr}, state}
  end

  defp munge_expr({:call, anno1, {:remote, anno2, mod, fun}, args}, state) do
    {mod, state} = munge_expr(mod, state)
    {fun, state} = munge_expr(fun, state)
    {args, state} = munge_exprs(args, state, [])
    {{:call, anno1, {:remote, anno2, mod, fun}, args}, state}
  end

  defp munge_expr({:call, anno, fun, args}, state) do
    {fun, state} = munge_expr(fun, state)
    {args, state} = munge_exprs(args, state, [])
    {{:call, anno, fun, args}, state}
  end

  defp munge_expr({kind, anno, template, qualifiers}, state) when kind in [:lc, :bc] do
    {template, state} = munge_expr(as_block(template), state)
    {qualifiers, state} = munge_qualifiers(qualifiers, state, [])
    {{kind, anno, template, qualifiers}, state}
  end

  # Map comprehensions (OTP 26): key and value each in a block, as for a template.
  defp munge_expr({:mc, anno, {:map_field_assoc, fanno, key, value}, qualifiers}, state) do
    template = {:map_field_assoc, fanno, as_block(key), as_block(value)}
    {template, state} = munge_expr(template, state)
    {qualifiers, state} = munge_qualifiers(qualifiers, state, [])
    {{:mc, anno, template, qualifiers}, state}
  end

  defp munge_expr({:block, anno, body}, state) do
    {body, state} = munge_body(body, state)
    {{:block, anno, body}, state}
  end

  defp munge_expr({:if, anno, clauses}, state) do
    {clauses, state} = munge_clauses(clauses, state)
    {{:if, anno, clauses}, state}
  end

  defp munge_expr({:case, anno, expr, clauses}, state) do
    {expr, state} = munge_expr(expr, state)
    {clauses, state} = munge_clauses(clauses, state)
    {{:case, anno, expr, clauses}, state}
  end

  defp munge_expr({:receive, anno, clauses}, state) do
    {clauses, state} = munge_clauses(clauses, state)
    {{:receive, anno, clauses}, state}
  end

  defp munge_expr({:receive, anno, clauses, timeout, body}, state) do
    {timeout, state1} = munge_expr(timeout, state)
    {clauses, state2} = munge_clauses(clauses, state1)
    # The after body is an alternative to the clauses, not a continuation.
    {body, state3} = munge_body(body, %{state2 | lines: state1.lines})
    state4 = %{state3 | lines: state2.lines ++ new_bumps(state3, state2)}
    {{:receive, anno, clauses, timeout, body}, state4}
  end

  defp munge_expr({:try, anno, body, clauses, catches, after_body}, state) do
    {body, state} = munge_body(body, state)
    {clauses, state} = munge_clauses(clauses, state)
    {catches, state} = munge_clauses(catches, state)
    {after_body, state} = munge_body(after_body, state)
    {{:try, anno, body, clauses, catches, after_body}, state}
  end

  defp munge_expr({:maybe, anno, body}, state) do
    {body, state} = munge_body(body, state)
    {{:maybe, anno, body}, state}
  end

  defp munge_expr({:maybe, anno, body, {:else, else_anno, clauses}}, state) do
    {body, state} = munge_body(body, state)
    {clauses, state} = munge_clauses(clauses, state)
    {{:maybe, anno, body, {:else, else_anno, clauses}}, state}
  end

  defp munge_expr({:fun, anno, {:clauses, clauses}}, state) do
    {clauses, state} = munge_clauses(clauses, state)
    {{:fun, anno, {:clauses, clauses}}, state}
  end

  defp munge_expr({:named_fun, anno, name, clauses}, state) do
    {clauses, state} = munge_clauses(clauses, state)
    {{:named_fun, anno, name, clauses}, state}
  end

  defp munge_expr({:bin, anno, elements}, state) do
    {elements, state} = munge_exprs(elements, state, [])
    {{:bin, anno, elements}, state}
  end

  defp munge_expr({:bin_element, anno, value, size, types}, state) do
    {value, state} = munge_expr(value, state)
    {size, state} = munge_expr(size, state)
    {{:bin_element, anno, value, size, types}, state}
  end

  # Variables, literals, record field access/index, external funs, ...
  defp munge_expr(other, state), do: {other, state}

  # In a guard sequence each element is a list of guard tests.
  defp munge_exprs([exprs | rest], %{is_guard: true} = state, acc) when is_list(exprs) do
    {munged, inner} = munge_exprs(exprs, state, [])
    munge_exprs(rest, keep_counters(state, inner), [munged | acc])
  end

  defp munge_exprs([expr | rest], state, acc) do
    {munged, state} = munge_expr(expr, state)
    munge_exprs(rest, state, [munged | acc])
  end

  defp munge_exprs([], state, acc), do: {Enum.reverse(acc), state}

  ## Comprehension qualifiers

  defp munge_qualifiers([{kind, anno, pattern, expr} | rest], state, acc)
       when kind in [:generate, :b_generate, :m_generate] do
    {munged, state2} = munge_expr(expr, state)
    add_qualifier(rest, elem(expr, 1), {kind, anno, pattern, munged}, state, state2, acc)
  end

  defp munge_qualifiers([filter | rest], state, acc) do
    {munged, state2} = munge_expr(filter, state)
    add_qualifier(rest, elem(filter, 1), munged, state, state2, acc)
  end

  defp munge_qualifiers([], state, acc), do: {Enum.reverse(acc), state}

  defp add_qualifier(rest, anno, qualifier, before, state, acc) do
    case new_bumps(state, before) do
      [_] ->
        munge_qualifiers(rest, state, [qualifier | acc])

      _ ->
        {counted_true, state} = munge_expr(as_block({:atom, anno, true}), state)
        munge_qualifiers(rest, state, [qualifier, counted_true | acc])
    end
  end

  ## Helpers

  defp as_block({:block, _, _} = block), do: block
  defp as_block(expr), do: {:block, :erl_anno.new(0), [expr]}

  # Placeholder for the counter of `line` in the current function clause;
  # allocates the next index the first time the site is seen.
  defp bump_call(state, line) do
    site = {state.function, state.arity, state.clause, line}

    case state.index do
      %{^site => index} ->
        {{:BUMP, line, index}, state}

      _ ->
        index = state.next

        state = %{
          state
          | index: Map.put(state.index, site, index),
            sites: [site | state.sites],
            next: index + 1
        }

        {{:BUMP, line, index}, state}
    end
  end

  defp keep_counters(state, other),
    do: %{state | index: other.index, sites: other.sites, next: other.next}

  defp new_bumps(%{lines: new}, %{lines: old}), do: subtract(new, old)

  defp subtract(list1, list2), do: for(e <- list1, e not in list2, do: e)
  defp common(list1, list2), do: for(e <- list1, e in list2, do: e)
end
