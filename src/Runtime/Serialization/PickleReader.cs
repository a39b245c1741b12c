using System.Buffers.Binary;
using System.Text;

namespace Compiled.Nets.Serialization;

/// <summary>
/// A safe unpickler for the <c>data.pkl</c> that <c>torch.save</c> writes (pickle protocols 2–5). It interprets the
/// opcode stream as data and never runs code: <c>GLOBAL</c>/<c>STACK_GLOBAL</c> resolve only names on a fixed
/// allow-list (OrderedDict, tensor rebuilding, typed storages, dtypes), and <c>REDUCE</c>/<c>NEWOBJ</c> only
/// "call" those by building the matching inert value. Every failure is an <see cref="InvalidDataException"/> that
/// names the source and the byte offset of the opcode.
/// </summary>
/// <remarks>
/// Values: <c>None</c> → null, bool, long, double, string, byte[], <see cref="Tuple"/>, List&lt;object?&gt;,
/// <see cref="Dict"/>, <see cref="Global"/>, <see cref="Storage"/> (from a persistent id), <see cref="TensorView"/>.
/// </remarks>
internal sealed class PickleReader
{
    /// <summary>What an allow-listed global stands for.</summary>
    internal enum GlobalKind { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType, DType }

    /// <summary>An allow-listed global; <see cref="DType"/> is set for storage types and dtypes.</summary>
    internal sealed record Global(string Module, string Name, GlobalKind Kind, SafeTensorDType DType)
    {
        public override string ToString() => Module + "." + Name;
    }

    /// <summary>A pickled tuple (kept apart from lists so argument checks can tell them apart).</summary>
    internal sealed record Tuple(object?[] Items);

    /// <summary>An ordered dict (dict and OrderedDict alike); attributes set by BUILD are ignored.</summary>
    internal sealed class Dict
    {
        private readonly Dictionary<object, int> _index = new();
        public List<KeyValuePair<object?, object?>> Items { get; } = new();

        public void Set(object? key, object? value)
        {
            // Keys are compared by value for strings and numbers, by identity otherwise, which is all state dicts use.
            if (key is not null && _index.TryGetValue(key, out int i)) { Items[i] = new(key, value); return; }
            if (key is not null) _index[key] = Items.Count;
            Items.Add(new(key, value));
        }
    }

    /// <summary>A storage named by a persistent id: <c>('storage', type, key, location, numel)</c>.</summary>
    internal sealed record Storage(string Key, SafeTensorDType DType, string TypeName, long Numel);

    /// <summary>A tensor rebuilt by <c>_rebuild_tensor_v2</c>: a strided view of a storage, bounds already checked.</summary>
    internal sealed record TensorView(Storage Storage, long Offset, int[] Shape, long[] Stride);

    // The whole allow-list. Anything else is rejected at the opcode that names it, before any value is built.
    private static readonly Dictionary<(string, string), (GlobalKind Kind, SafeTensorDType DType)> Allowed = new()
    {
        [("collections", "OrderedDict")] = (GlobalKind.OrderedDict, default),
        [("torch._utils", "_rebuild_tensor_v2")] = (GlobalKind.RebuildTensorV2, default),
        [("torch._utils", "_rebuild_parameter")] = (GlobalKind.RebuildParameter, default),
        [("torch", "FloatStorage")] = (GlobalKind.StorageType, SafeTensorDType.F32),
        [("torch", "HalfStorage")] = (GlobalKind.StorageType, SafeTensorDType.F16),
        [("torch", "BFloat16Storage")] = (GlobalKind.StorageType, SafeTensorDType.BF16),
        [("torch", "DoubleStorage")] = (GlobalKind.StorageType, SafeTensorDType.F64),
        [("torch", "LongStorage")] = (GlobalKind.StorageType, SafeTensorDType.I64),
        [("torch", "IntStorage")] = (GlobalKind.StorageType, SafeTensorDType.I32),
        [("torch", "ByteStorage")] = (GlobalKind.StorageType, SafeTensorDType.U8),
        [("torch", "float32")] = (GlobalKind.DType, SafeTensorDType.F32),
        [("torch", "float16")] = (GlobalKind.DType, SafeTensorDType.F16),
        [("torch", "bfloat16")] = (GlobalKind.DType, SafeTensorDType.BF16),
        [("torch", "float64")] = (GlobalKind.DType, SafeTensorDType.F64),
        [("torch", "int64")] = (GlobalKind.DType, SafeTensorDType.I64),
        [("torch", "int32")] = (GlobalKind.DType, SafeTensorDType.I32),
        [("torch", "uint8")] = (GlobalKind.DType, SafeTensorDType.U8),
    };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly string _source;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();
    private readonly Dictionary<string, Storage> _storages = new(StringComparer.Ordinal);
    private int _pos, _op;
    // Values pushed, copied or added to containers: each opcode byte can only account for a few, so a pickle that
    // makes more (a few bytes of DUP or BINGET fanned out by TUPLE/APPENDS/SETITEMS) is refused before it eats memory.
    private long _work;
    private readonly long _workLimit;

    private PickleReader(byte[] data, string source) { _data = data; _source = source; _workLimit = 16L * data.Length + 65536; }

    /// <summary>Counts <paramref name="n"/> values of work against the budget.</summary>
    private void Work(long n)
    {
        _work += n;
        if (_work > _workLimit) throw Error($"the pickle builds more than {_workLimit} values from its {_data.Length} bytes; a torch.save state dict never does.");
    }

    /// <summary>Unpickles <paramref name="data"/>; <paramref name="source"/> names it in errors (e.g. <c>archive/data.pkl</c>).</summary>
    /// <exception cref="InvalidDataException">Malformed pickle or a global outside the allow-list.</exception>
    public static object? Load(byte[] data, string source) => new PickleReader(data, source).Run();

    /// <summary>The one error shape: "&lt;source&gt; at byte N: message", or "… at byte N references …" for a verb clause.</summary>
    private InvalidDataException Error(string message, bool clause = false) => new($"{_source} at byte {_op}{(clause ? " " : ": ")}{message}");

    private object? Run()
    {
        while (true)
        {
            _op = _pos;
            byte code = ReadByte();
            switch (code)
            {
                case 0x80: { byte p = ReadByte(); if (p > 5) throw Error($"pickle protocol {p} is newer than 5."); break; } // PROTO
                case 0x95: Take(8); break;                                               // FRAME: framing is only a hint
                case (byte)'.': return _stack.Count == 1 && _marks.Count == 0 ? _stack[0] // STOP
                    : throw Error($"STOP with {_stack.Count} values on the stack and {_marks.Count} open marks; expected exactly one value.");
                case (byte)'(': Work(1); _marks.Add(_stack.Count); break;                // MARK
                case (byte)'}': Push(new Dict()); break;                                 // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;                        // EMPTY_LIST
                case (byte)')': Push(new Tuple([])); break;                              // EMPTY_TUPLE
                case (byte)'N': Push(null); break;                                       // NONE
                case 0x88: Push(true); break;                                            // NEWTRUE
                case 0x89: Push(false); break;                                           // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break;                           // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break;                            // LONG1
                case 0x8b: Push(ReadLong(ReadLength(4))); break;                         // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(Take(ReadLength(4)))); break;                  // BINUNICODE
                case 0x8c: Push(Utf8(Take(ReadByte()))); break;                          // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Take(ReadLength(8)))); break;                       // BINUNICODE8
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break;                 // SHORT_BINBYTES
                case (byte)'B': Push(Take(ReadLength(4)).ToArray()); break;              // BINBYTES
                case 0x85: Push(new Tuple(PopN(1))); break;                              // TUPLE1
                case 0x86: Push(new Tuple(PopN(2))); break;                              // TUPLE2
                case 0x87: Push(new Tuple(PopN(3))); break;                              // TUPLE3
                case (byte)'t': Push(new Tuple(PopMark())); break;                       // TUPLE
                case (byte)'l': Push(new List<object?>(PopMark())); break;               // LIST
                case (byte)'d': { var d = new Dict(); SetItems(d, PopMark()); Push(d); break; } // DICT
                case (byte)'s': { var kv = PopN(2); SetItems(PeekAs<Dict>("SETITEM"), kv); break; } // SETITEM
                case (byte)'u': { var kv = PopMark(); SetItems(PeekAs<Dict>("SETITEMS"), kv); break; } // SETITEMS
                case (byte)'a': { var v = Pop(); Work(1); PeekAs<List<object?>>("APPEND").Add(v); break; } // APPEND
                case (byte)'e': { var vs = PopMark(); PeekAs<List<object?>>("APPENDS").AddRange(vs); break; } // APPENDS
                case (byte)'0': Pop(); break;                                            // POP
                case (byte)'1': PopMark(); break;                                        // POP_MARK
                case (byte)'2': Push(Peek()); break;                                     // DUP
                case (byte)'q': Work(1); _memo[ReadByte()] = Peek(); break;              // BINPUT
                case (byte)'r': Work(1); _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: Work(1); _memo[_memo.Count] = Peek(); break;                  // MEMOIZE
                case (byte)'h': Push(MemoGet(ReadByte())); break;                        // BINGET
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'c': { string module = ReadLine(), name = ReadLine(); Push(Resolve(module, name)); break; } // GLOBAL
                case 0x93: { var name = Pop(); var module = Pop(); Push(Resolve(As<string>(module, "STACK_GLOBAL module"), As<string>(name, "STACK_GLOBAL name"))); break; }
                case (byte)'R': { var args = Pop(); var f = Pop(); Push(Call(f, args, "REDUCE")); break; } // REDUCE
                case 0x81: { var args = Pop(); var cls = Pop(); Push(Call(cls, args, "NEWOBJ")); break; } // NEWOBJ
                case (byte)'b': Build(Pop(), Peek()); break;                             // BUILD
                case (byte)'Q': Push(PersistentLoad(Pop())); break;                      // BINPERSID
                default: throw Error($"opcode 0x{code:x2} is not supported (only the opcodes torch.save emits are).");
            }
        }
    }

    // ---- input ----
    private byte ReadByte() => _pos < _data.Length ? _data[_pos++] : throw Error("truncated: the pickle ends inside an opcode (no STOP).");

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n > _data.Length - _pos) throw Error($"truncated: needs {n} more bytes, {_data.Length - _pos} remain.");
        var s = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    private long ReadLength(int bytes)
    {
        long n = bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Take(4)) : BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        return n >= 0 ? n : throw Error($"negative length {n}.");
    }

    private long ReadLong(long n)
    {
        if (n > 8) throw Error($"an integer of {n} bytes does not fit in 64 bits.");
        var b = Take(n);
        long v = 0;
        for (int i = (int)n - 1; i >= 0; i--) v = (v << 8) | b[i];
        // Two's complement: sign-extend from the top byte.
        return n is > 0 and < 8 && (b[(int)n - 1] & 0x80) != 0 ? v - (1L << (int)(8 * n)) : v;
    }

    private string Utf8(ReadOnlySpan<byte> bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Error("a string is not valid UTF-8."); }
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error("truncated: GLOBAL name without a newline.");
        var s = Utf8(_data.AsSpan(_pos, end - _pos));
        _pos = end + 1;
        return s;
    }

    // ---- stack ----
    private void Push(object? v) { Work(1); _stack.Add(v); }

    private object? Peek() => _stack.Count > (_marks.Count > 0 ? _marks[^1] : 0) ? _stack[^1] : throw Error("stack underflow.");

    private object? Pop() { var v = Peek(); _stack.RemoveAt(_stack.Count - 1); return v; }

    private object?[] PopN(int n)
    {
        int floor = _marks.Count > 0 ? _marks[^1] : 0;
        if (_stack.Count - floor < n) throw Error($"stack underflow: needs {n} values, {_stack.Count - floor} available.");
        Work(n);
        var items = _stack.GetRange(_stack.Count - n, n).ToArray();
        _stack.RemoveRange(_stack.Count - n, n);
        return items;
    }

    private object?[] PopMark()
    {
        if (_marks.Count == 0) throw Error("no MARK to pop to.");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        Work(2L * (_stack.Count - m)); // the copy here, and the container the caller builds from it
        var items = _stack.GetRange(m, _stack.Count - m).ToArray();
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private T PeekAs<T>(string what) => As<T>(Peek(), what + " target");

    private T As<T>(object? v, string what) => v is T t ? t : throw Error($"{what} must be a {Describe(typeof(T))}, not {Describe(v)}.");

    private object? MemoGet(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo entry {key} was never stored.");

    private void SetItems(Dict d, object?[] kv)
    {
        if (kv.Length % 2 != 0) throw Error($"odd number of values ({kv.Length}) for dict items.");
        for (int i = 0; i < kv.Length; i += 2) d.Set(kv[i], kv[i + 1]);
    }

    // ---- globals and calls: interpretation, never execution ----
    private Global Resolve(string module, string name) =>
        Allowed.TryGetValue((module, name), out var a) ? new Global(module, name, a.Kind, a.DType)
            : throw Error($"references {module}.{name}, which is not on the allow-list (only tensor rebuilding and OrderedDict are).", clause: true);

    private object? Call(object? callable, object? args, string opcode)
    {
        var f = callable as Global ?? throw Error($"{opcode} applies {Describe(callable)}, which is not callable.");
        var a = As<Tuple>(args, $"{opcode} arguments of {f}").Items;
        switch (f.Kind)
        {
            case GlobalKind.OrderedDict:
                var d = new Dict();
                if (a.Length == 0) return d;
                // OrderedDict([(k, v), ...]) — pairs as tuples or lists.
                if (a.Length == 1 && a[0] is List<object?> pairs)
                {
                    foreach (var p in pairs)
                    {
                        var kv = p as Tuple ?? throw Error($"OrderedDict item must be a (key, value) tuple, not {Describe(p)}.");
                        if (kv.Items.Length != 2) throw Error($"OrderedDict item has {kv.Items.Length} elements, not 2.");
                        d.Set(kv.Items[0], kv.Items[1]);
                    }
                    return d;
                }
                throw Error($"OrderedDict called with {a.Length} arguments; expected none or a list of pairs.");
            case GlobalKind.RebuildTensorV2 when opcode == "REDUCE":
                return RebuildTensor(a);
            case GlobalKind.RebuildParameter when opcode == "REDUCE":
                // _rebuild_parameter(data, requires_grad, backward_hooks): the parameter is its data.
                if (a.Length != 3) throw Error($"_rebuild_parameter expects 3 arguments (data, requires_grad, backward_hooks), got {a.Length}.");
                return As<TensorView>(a[0], "_rebuild_parameter data");
            default:
                throw Error($"{opcode} of {f} is not supported (it is allow-listed only as a value).");
        }
    }

    private TensorView RebuildTensor(object?[] a)
    {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.Length is not (6 or 7))
            throw Error($"_rebuild_tensor_v2 expects 6 or 7 arguments (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]), got {a.Length}.");
        var storage = As<Storage>(a[0], "_rebuild_tensor_v2 storage");
        long offset = As<long>(a[1], "_rebuild_tensor_v2 storage_offset");
        var size = Ints(a[2], "size");
        var stride = Ints(a[3], "stride");
        if (size.Length != stride.Length) throw Error($"tensor size ({Shape(size)}) and stride ({Shape(stride)}) have different ranks.");
        if (offset < 0) throw Error($"negative storage offset {offset}.");
        var shape = new int[size.Length];
        long last = offset, count = 1;
        try
        {
            for (int i = 0; i < size.Length; i++)
            {
                if (size[i] < 0 || size[i] > int.MaxValue) throw Error($"tensor dimension {size[i]} in size {Shape(size)} is out of range.");
                if (stride[i] < 0) throw Error($"negative stride {stride[i]} in {Shape(stride)}.");
                shape[i] = (int)size[i];
                count = checked(count * size[i]);
                if (size[i] > 0) last = checked(last + (size[i] - 1) * stride[i]);
            }
        }
        catch (OverflowException) { throw Error($"tensor of size {Shape(size)} and stride {Shape(stride)} overflows 64-bit indexing."); }
        if (count > 0 && last >= storage.Numel)
            throw Error($"tensor of size {Shape(size)}, stride {Shape(stride)} and offset {offset} reaches element {last}, but storage '{storage.Key}' ({storage.TypeName}) has {storage.Numel} elements.");
        if (count > Array.MaxLength / SafeTensor.Size(storage.DType))
            throw Error($"tensor of size {Shape(size)} needs {(Int128)count * SafeTensor.Size(storage.DType)} bytes, more than one array can hold.");
        // Only a zero or overlapping stride repeats elements: a view needing more elements than its storage holds
        // would be materialised from almost nothing (a 400-byte file asking for a gigabyte).
        if (count > storage.Numel)
            throw Error($"tensor of size {Shape(size)} and stride {Shape(stride)} repeats the {storage.Numel} elements of storage '{storage.Key}' into {count}; save it with .contiguous() (or .clone()) first.");
        return new TensorView(storage, offset, shape, stride);
    }

    private long[] Ints(object? v, string what)
    {
        var items = As<Tuple>(v, $"_rebuild_tensor_v2 {what}").Items;
        var r = new long[items.Length];
        for (int i = 0; i < r.Length; i++) r[i] = As<long>(items[i], $"_rebuild_tensor_v2 {what}[{i}]");
        return r;
    }

    private void Build(object? state, object? target)
    {
        // torch sets the state dict's _metadata (per-module versions) this way; it carries no weights.
        if (target is Dict or TensorView) return;
        throw Error($"BUILD on {Describe(target)} is not supported.");
    }

    private Storage PersistentLoad(object? pid)
    {
        var t = As<Tuple>(pid, "persistent id").Items;
        if (t.Length != 5 || t[0] is not "storage")
            throw Error($"persistent id must be ('storage', storage_type, key, location, numel), got a {t.Length}-tuple starting with {Describe(t.Length > 0 ? t[0] : null)}.");
        var type = t[1] as Global is { Kind: GlobalKind.StorageType } g ? g : throw Error($"persistent id storage type is {Describe(t[1])}, not a torch.*Storage.");
        string key = As<string>(t[2], "persistent id key");
        As<string>(t[3], "persistent id location");
        long numel = As<long>(t[4], "persistent id numel");
        if (numel < 0) throw Error($"storage '{key}' declares {numel} elements.");
        if (_storages.TryGetValue(key, out var seen))
        {
            // Tensors sharing a storage (tied weights, views) name the same key; it must mean the same thing.
            if (seen.DType != type.DType || seen.Numel != numel)
                throw Error($"storage '{key}' is declared as {seen.TypeName} of {seen.Numel} elements and again as {type.Name} of {numel}.");
            return seen;
        }
        return _storages[key] = new Storage(key, type.DType, type.Name, numel);
    }

    // ---- messages ----
    private static string Shape(long[] s) => "[" + string.Join(", ", s) + "]";

    private static string Describe(Type t) =>
        t == typeof(string) ? "str" : t == typeof(long) ? "int" : t == typeof(Tuple) ? "tuple" : t == typeof(Dict) ? "dict"
        : t == typeof(List<object?>) ? "list" : t == typeof(Storage) ? "storage" : t == typeof(TensorView) ? "tensor" : t.Name;

    internal static string Describe(object? v) => v switch
    {
        null => "None",
        bool => "bool",
        double => "float",
        byte[] => "bytes",
        Global g => g.ToString(),
        _ => Describe(v.GetType()),
    };
}
