%% Fixture of bench/scale.exs (not part of the library): a CPU-heavy "real" workload.
%%
%% A small interpreter: a tokenizer, a recursive-descent parser and a tree-walking
%% evaluator for a toy language of `let` bindings, arithmetic, comparisons, `if` and
%% `print`, run over a generated program. The bench compiles this file twice under two
%% module names (one copy instrumented by the tool under test, the other plain) and
%% compares run/2 of both.
-module(scale_workload).
-export([program/1, run/2]).

%% program(N) -> the source text of N statements (deterministic).
program(N) ->
    iolist_to_binary([statement(I) || I <- lists:seq(1, N)]).

statement(I) ->
    Var = var(I),
    Expr = expr(I, 3),
    case I rem 9 of
        0 -> ["print ", Expr, ";\n"];
        _ -> ["let ", Var, " = ", Expr, ";\n"]
    end.

var(I) -> ["v", integer_to_list(I rem 23)].

expr(I, 0) ->
    case I rem 3 of
        0 -> integer_to_list(I rem 97 + 1);
        1 -> var(I * 7 + 3);
        _ -> ["(", integer_to_list(I rem 13), " + ", var(I + 5), ")"]
    end;
expr(I, D) ->
    Left = expr(I * 31 + D, D - 1),
    Right = expr(I * 17 + D * 5, D - 1),
    case (I + D) rem 6 of
        0 -> [Left, " + ", Right];
        1 -> [Left, " * ", Right];
        2 -> [Left, " - ", Right];
        3 -> ["if ", Left, " < ", Right, " then ", Left, " else ", Right];
        4 -> ["(", Left, " % 1009) + ", Right];
        _ -> [Left, " / (", Right, " % 7 + 1)"]
    end.

%% run(Source, Rounds) -> a checksum of what the program printed and bound: Rounds times
%% parse the source and run the program.
run(Source, Rounds) ->
    run_rounds(Source, Rounds, 0).

run_rounds(_Source, 0, Acc) ->
    Acc;
run_rounds(Source, N, Acc) ->
    Program = parse_program(tokens(Source, []), []),
    Env0 = #{<<"seed">> => N},
    {Env, Out} = exec(Program, Env0, []),
    Sum = lists:foldl(fun(V, S) -> (S * 31 + V) rem 1000000007 end, 0, Out),
    run_rounds(Source, N - 1, (Acc + Sum + maps:size(Env)) rem 1000000007).

%% Tokenizer

tokens(<<>>, Acc) ->
    lists:reverse(Acc);
tokens(<<C, Rest/binary>>, Acc) when C =:= $\s; C =:= $\n; C =:= $\t ->
    tokens(Rest, Acc);
tokens(<<C, _/binary>> = Bin, Acc) when C >= $0, C =< $9 ->
    {Int, Rest} = take_int(Bin, 0),
    tokens(Rest, [{int, Int} | Acc]);
tokens(<<C, _/binary>> = Bin, Acc) when C >= $a, C =< $z ->
    {Word, Rest} = take_word(Bin, <<>>),
    tokens(Rest, [word(Word) | Acc]);
tokens(<<C, Rest/binary>>, Acc) ->
    tokens(Rest, [{op, C} | Acc]).

take_int(<<C, Rest/binary>>, N) when C >= $0, C =< $9 ->
    take_int(Rest, N * 10 + C - $0);
take_int(Rest, N) ->
    {N, Rest}.

take_word(<<C, Rest/binary>>, W) when C >= $a, C =< $z; C >= $0, C =< $9 ->
    take_word(Rest, <<W/binary, C>>);
take_word(Rest, W) ->
    {W, Rest}.

word(<<"let">>) -> 'let';
word(<<"print">>) -> print;
word(<<"if">>) -> 'if';
word(<<"then">>) -> then;
word(<<"else">>) -> 'else';
word(W) -> {var, W}.

%% Parser: statements, then expressions by precedence (comparison < additive < term).

parse_program([], Acc) ->
    lists:reverse(Acc);
parse_program(['let', {var, V}, {op, $=} | Rest], Acc) ->
    {Expr, [{op, $;} | Rest1]} = parse_expr(Rest),
    parse_program(Rest1, [{'let', V, Expr} | Acc]);
parse_program([print | Rest], Acc) ->
    {Expr, [{op, $;} | Rest1]} = parse_expr(Rest),
    parse_program(Rest1, [{print, Expr} | Acc]).

parse_expr(['if' | Rest]) ->
    {Cond, [then | Rest1]} = parse_expr(Rest),
    {Then, ['else' | Rest2]} = parse_expr(Rest1),
    {Else, Rest3} = parse_expr(Rest2),
    {{'if', Cond, Then, Else}, Rest3};
parse_expr(Tokens) ->
    {Left, Rest} = parse_additive(Tokens),
    case Rest of
        [{op, $<} | Rest1] ->
            {Right, Rest2} = parse_additive(Rest1),
            {{lt, Left, Right}, Rest2};
        _ ->
            {Left, Rest}
    end.

parse_additive(Tokens) ->
    {Left, Rest} = parse_term(Tokens),
    additive_tail(Left, Rest).

additive_tail(Left, [{op, Op} | Rest]) when Op =:= $+; Op =:= $- ->
    {Right, Rest1} = parse_term(Rest),
    additive_tail({binop(Op), Left, Right}, Rest1);
additive_tail(Left, Rest) ->
    {Left, Rest}.

parse_term(Tokens) ->
    {Left, Rest} = parse_factor(Tokens),
    term_tail(Left, Rest).

term_tail(Left, [{op, Op} | Rest]) when Op =:= $*; Op =:= $/; Op =:= $% ->
    {Right, Rest1} = parse_factor(Rest),
    term_tail({binop(Op), Left, Right}, Rest1);
term_tail(Left, Rest) ->
    {Left, Rest}.

parse_factor([{int, N} | Rest]) ->
    {{int, N}, Rest};
parse_factor([{var, V} | Rest]) ->
    {{var, V}, Rest};
parse_factor([{op, $(} | Rest]) ->
    {Expr, [{op, $)} | Rest1]} = parse_expr(Rest),
    {Expr, Rest1};
parse_factor(['if' | _] = Tokens) ->
    parse_expr(Tokens).

binop($+) -> add;
binop($-) -> sub;
binop($*) -> mul;
binop($/) -> 'div';
binop($%) -> 'rem'.

%% Evaluator

exec([], Env, Out) ->
    {Env, lists:reverse(Out)};
exec([{'let', V, Expr} | Rest], Env, Out) ->
    Value = eval(Expr, Env),
    exec(Rest, Env#{V => Value}, Out);
exec([{print, Expr} | Rest], Env, Out) ->
    Value = eval(Expr, Env),
    exec(Rest, Env, [Value | Out]).

eval({int, N}, _Env) ->
    N;
eval({var, V}, Env) ->
    case Env of
        #{V := Value} -> Value;
        _ -> 0
    end;
eval({'if', Cond, Then, Else}, Env) ->
    case eval(Cond, Env) of
        0 -> eval(Else, Env);
        _ -> eval(Then, Env)
    end;
eval({lt, A, B}, Env) ->
    case eval(A, Env) < eval(B, Env) of
        true -> 1;
        false -> 0
    end;
eval({Op, A, B}, Env) ->
    X = eval(A, Env),
    Y = eval(B, Env),
    arith(Op, X, Y).

arith(add, X, Y) -> clamp(X + Y);
arith(sub, X, Y) -> clamp(X - Y);
arith(mul, X, Y) -> clamp(X * Y);
arith('div', X, 0) -> X;
arith('div', X, Y) -> X div Y;
arith('rem', X, 0) -> X;
arith('rem', X, Y) -> X rem Y.

clamp(X) when X > 1000000007; X < -1000000007 -> X rem 1000000007;
clamp(X) -> X.
