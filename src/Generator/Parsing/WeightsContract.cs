using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Parsing
{
    /// <summary>
    /// <c>[Weights("…")]</c>: the network's tensors against a weights file's header, at build time. The file is an
    /// AdditionalFiles item (its path, or an item whose path ends with it); a safetensors file's header is its first
    /// 8 + N bytes, read here and never the data; a Hugging Face index (<c>model.safetensors.index.json</c>) names shards
    /// beside it, whose headers are read the same way. Reports at the attribute: an unusable file (CNET0022), tensors the
    /// network expects that the file lacks (CNET0023), shapes or dtypes that differ (CNET0024), and the file's tensors the
    /// network does not use (CNET0025, a warning).
    /// </summary>
    internal static class WeightsContract
    {
        /// <summary>One tensor of a header: name, dtype and shape.</summary>
        internal sealed record HeaderTensor(string Name, string DType, long[] Shape);

        /// <summary>safetensors' own bound on a header (100 MB), so a corrupt length cannot make the build allocate wildly.</summary>
        private const long MaxHeaderBytes = 100_000_000;

        /// <summary>The item of <paramref name="files"/> that the attribute's path names: the same path, or one ending with it.</summary>
        public static string? Resolve(string declared, IEnumerable<string> files)
        {
            string want = Normalize(declared);
            return files.FirstOrDefault(f => Normalize(f) == want)
                ?? files.FirstOrDefault(f => Normalize(f).EndsWith("/" + want.TrimStart('/'), StringComparison.Ordinal));
        }

        private static string Normalize(string path) => path.Replace('\\', '/');

        public static IEnumerable<DiagnosticInfo> Check(INamedTypeSymbol type, NetworkSpec spec, IEnumerable<string> additionalFiles, CancellationToken ct)
        {
            var a = type.GetAttributes().FirstOrDefault(x => x.AttributeClass?.ToDisplayString() == "Compiled.Nets.WeightsAttribute");
            if (a is null) yield break;
            var location = LocationInfo.From(a.ApplicationSyntaxReference?.GetSyntax(ct));
            string declared = a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is string p ? p : "";
            string? path = Resolve(declared, additionalFiles);
            if (path is null)
            {
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsFileUnusable, location, declared,
                    "it is not an AdditionalFiles item of this project: add <AdditionalFiles Include=\"" + declared + "\" /> to the project file");
                yield break;
            }
            List<HeaderTensor> tensors;
            string? error;
            try { (tensors, error) = ReadTensors(path, ct); }
            catch (IOException e) { (tensors, error) = (new List<HeaderTensor>(), e.Message); }
            catch (UnauthorizedAccessException e) { (tensors, error) = (new List<HeaderTensor>(), e.Message); }
            if (error is not null)
            {
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsFileUnusable, location, declared, error);
                yield break;
            }

            var byName = new Dictionary<string, HeaderTensor>(StringComparer.Ordinal);
            foreach (var t in tensors) byName[t.Name] = t;
            var missing = spec.Parameters.Where(q => !byName.ContainsKey(q.Name)).Select(q => q.Name).ToList();
            if (missing.Count > 0)
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsMissing, location, declared, missing.Count, spec.Parameters.Count, spec.TypeName, List(missing));
            foreach (var q in spec.Parameters.Where(q => byName.ContainsKey(q.Name)))
            {
                var t = byName[q.Name];
                bool shapeDiffers = !t.Shape.SequenceEqual(q.Shape.Select(d => (long)d));
                // Floats of any width load; integers only into buffers (BatchNorm's num_batches_tracked, int64 in PyTorch).
                bool dtypeDiffers = !(t.DType is "F32" or "F16" or "BF16" or "F64" || q.IsBuffer && t.DType is "I64" or "I32");
                if (shapeDiffers || dtypeDiffers)
                    yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsMismatch, location, declared, q.Name,
                        t.DType, Shape(t.Shape), spec.TypeName, "F32 " + Shape(q.Shape.Select(d => (long)d)));
            }
            var expected = new HashSet<string>(spec.Parameters.Select(q => q.Name), StringComparer.Ordinal);
            var unused = tensors.Where(t => !expected.Contains(t.Name)).Select(t => t.Name).ToList();
            if (unused.Count > 0)
                yield return DiagnosticInfo.Create(DiagnosticDescriptors.WeightsUnused, location, declared, unused.Count, spec.TypeName, List(unused));
        }

        private static string Shape(IEnumerable<long> dims) => "[" + string.Join(", ", dims.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

        private static string List(List<string> names) => string.Join(", ", names.Take(8)) + (names.Count > 8 ? $" and {names.Count - 8} more" : "");

        /// <summary>The tensors of a safetensors file or of the shards of an index; an error text instead where unusable.</summary>
        internal static (List<HeaderTensor> Tensors, string? Error) ReadTensors(string path, CancellationToken ct)
        {
            if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return ReadHeader(path, ct);
            var (shards, error) = ReadIndex(path);
            if (error is not null) return (new List<HeaderTensor>(), error);
            var all = new List<HeaderTensor>();
            string dir = Path.GetDirectoryName(path) ?? "";
            foreach (var shard in shards)
            {
                var (tensors, shardError) = ReadHeader(Path.Combine(dir, shard), ct);
                if (shardError is not null) return (all, $"shard '{shard}': {shardError}");
                all.AddRange(tensors);
            }
            return (all, null);
        }

        // Analyzers may not read files in general (RS1035: some hosts have none), but Roslyn has no binary additional
        // files: AdditionalText.GetText would decode a checkpoint of hundreds of MB as text to reach a header of a few KB.
        // So the header alone is read, bounded, from the item's own path.
#pragma warning disable RS1035
        private static (List<HeaderTensor> Tensors, string? Error) ReadHeader(string path, CancellationToken ct)
        {
            if (!File.Exists(path)) return (new List<HeaderTensor>(), $"'{path}' does not exist");
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            var lengthBytes = new byte[8];
            if (ReadFully(stream, lengthBytes) < 8) return (new List<HeaderTensor>(), "it is too short for a safetensors file (no 8-byte header length)");
            ulong length = BitConverter.ToUInt64(lengthBytes, 0);
            if (length > MaxHeaderBytes || (long)length > stream.Length - 8)
                return (new List<HeaderTensor>(), $"its header length {length} does not fit the file ({stream.Length} bytes): not a safetensors file");
            var header = new byte[length];
            if (ReadFully(stream, header) < header.Length) return (new List<HeaderTensor>(), "its header is truncated");
            ct.ThrowIfCancellationRequested();
            string text;
            try { text = new UTF8Encoding(false, true).GetString(header); }
            catch (DecoderFallbackException) { return (new List<HeaderTensor>(), "its header is not valid UTF-8"); }
            return ParseHeader(text);
        }

        private static (List<string> Shards, string? Error) ReadIndex(string path)
        {
            if (!File.Exists(path)) return (new List<string>(), $"'{path}' does not exist");
            var info = new FileInfo(path);
            if (info.Length > 64 << 20) return (new List<string>(), "the index is larger than 64 MiB");
            object? root;
            try { root = new Json(File.ReadAllText(path)).Document(); }
            catch (FormatException e) { return (new List<string>(), "the index is not valid JSON: " + e.Message); }
            if (root is not Dictionary<string, object?> o || !o.TryGetValue("weight_map", out var mapValue) || mapValue is not Dictionary<string, object?> map)
                return (new List<string>(), "the index has no \"weight_map\" object");
            var shards = new List<string>();
            foreach (var kv in map)
            {
                if (kv.Value is not string shard || shard.IndexOfAny(new[] { '/', '\\' }) >= 0 || shard.Contains(".."))
                    return (new List<string>(), $"the shard of '{kv.Key}' is not a file beside the index");
                if (!shards.Contains(shard)) shards.Add(shard);
            }
            return (shards, null);
        }
#pragma warning restore RS1035

        private static int ReadFully(Stream s, byte[] buffer)
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = s.Read(buffer, total, buffer.Length - total);
                if (n == 0) break;
                total += n;
            }
            return total;
        }

        /// <summary>A safetensors header: an object of tensors (dtype, shape, data_offsets) and an optional __metadata__.</summary>
        internal static (List<HeaderTensor> Tensors, string? Error) ParseHeader(string text)
        {
            object? root;
            try { root = new Json(text).Document(); }
            catch (FormatException e) { return (new List<HeaderTensor>(), "its header is not valid JSON: " + e.Message); }
            if (root is not Dictionary<string, object?> entries) return (new List<HeaderTensor>(), "its header is not a JSON object");
            var tensors = new List<HeaderTensor>();
            foreach (var kv in entries)
            {
                if (kv.Key == "__metadata__") continue;
                if (kv.Value is not Dictionary<string, object?> t || !t.TryGetValue("dtype", out var dtype) || dtype is not string dt
                    || !t.TryGetValue("shape", out var shapeValue) || shapeValue is not List<object?> shape || shape.Any(d => d is not long n || n < 0))
                    return (tensors, $"its entry '{kv.Key}' has no dtype and shape");
                tensors.Add(new HeaderTensor(kv.Key, dt, shape.Select(d => (long)d!).ToArray()));
            }
            return (tensors, null);
        }

        /// <summary>A small JSON reader (objects, arrays, strings, integers, true/false/null) for headers: the generator
        /// targets netstandard2.0 and carries no JSON library into the compiler's process.</summary>
        private sealed class Json
        {
            private readonly string _s;
            private int _i, _depth;

            public Json(string s) => _s = s;

            public object? Document()
            {
                var v = Value();
                Skip();
                if (_i != _s.Length) throw Error("text after the value");
                return v;
            }

            private FormatException Error(string what) => new($"{what} at character {_i}");

            private void Skip() { while (_i < _s.Length && _s[_i] is ' ' or '\t' or '\n' or '\r') _i++; }

            private object? Value()
            {
                Skip();
                if (_i >= _s.Length) throw Error("unexpected end");
                char c = _s[_i];
                if (c == '{' || c == '[')
                {
                    if (++_depth > 16) throw Error("nesting too deep");
                    var v = c == '{' ? (object)Object() : Array();
                    _depth--;
                    return v;
                }
                if (c == '"') return String();
                if (c == '-' || char.IsDigit(c)) return Number();
                foreach (var (word, value) in new[] { ("true", (object?)true), ("false", false), ("null", null) })
                    if (string.CompareOrdinal(_s, _i, word, 0, word.Length) == 0) { _i += word.Length; return value; }
                throw Error($"unexpected '{c}'");
            }

            private Dictionary<string, object?> Object()
            {
                var o = new Dictionary<string, object?>(StringComparer.Ordinal);
                _i++;
                Skip();
                if (_i < _s.Length && _s[_i] == '}') { _i++; return o; }
                while (true)
                {
                    Skip();
                    if (_i >= _s.Length || _s[_i] != '"') throw Error("expected a name");
                    string key = String();
                    Skip();
                    if (_i >= _s.Length || _s[_i] != ':') throw Error("expected ':'");
                    _i++;
                    if (o.ContainsKey(key)) throw Error($"duplicate name '{key}'");
                    o[key] = Value();
                    Skip();
                    if (_i < _s.Length && _s[_i] == ',') { _i++; continue; }
                    if (_i < _s.Length && _s[_i] == '}') { _i++; return o; }
                    throw Error("expected ',' or '}'");
                }
            }

            private List<object?> Array()
            {
                var a = new List<object?>();
                _i++;
                Skip();
                if (_i < _s.Length && _s[_i] == ']') { _i++; return a; }
                while (true)
                {
                    a.Add(Value());
                    Skip();
                    if (_i < _s.Length && _s[_i] == ',') { _i++; continue; }
                    if (_i < _s.Length && _s[_i] == ']') { _i++; return a; }
                    throw Error("expected ',' or ']'");
                }
            }

            private string String()
            {
                var sb = new StringBuilder();
                _i++;
                while (true)
                {
                    if (_i >= _s.Length) throw Error("unterminated string");
                    char c = _s[_i++];
                    if (c == '"') return sb.ToString();
                    if (c != '\\') { sb.Append(c); continue; }
                    if (_i >= _s.Length) throw Error("unterminated escape");
                    char e = _s[_i++];
                    switch (e)
                    {
                        case '"': case '\\': case '/': sb.Append(e); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (_i + 4 > _s.Length || !int.TryParse(_s.Substring(_i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int u)) throw Error("bad \\u escape");
                            sb.Append((char)u);
                            _i += 4;
                            break;
                        default: throw Error($"bad escape '\\{e}'");
                    }
                }
            }

            private object Number()
            {
                int start = _i;
                if (_s[_i] == '-') _i++;
                while (_i < _s.Length && (char.IsDigit(_s[_i]) || _s[_i] is '.' or 'e' or 'E' or '+' or '-')) _i++;
                string text = _s.Substring(start, _i - start);
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) return n;
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
                throw Error($"bad number '{text}'");
            }
        }
    }
}
