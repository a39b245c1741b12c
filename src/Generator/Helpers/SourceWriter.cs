using System.Globalization;
using System.Text;

namespace Compiled.Nets.Generator.Helpers
{
    /// <summary>Appends lines at the current indentation (4 spaces a level); <c>{</c>/<c>}</c> helpers keep blocks balanced.</summary>
    internal sealed class SourceWriter
    {
        private readonly StringBuilder _sb = new();
        public int Indent { get; set; }

        public void Line(string text = "")
        {
            if (text.Length > 0) _sb.Append(' ', Indent * 4).Append(text);
            _sb.Append('\n');
        }

        /// <summary>Appends text written by another writer at indentation 0, line by line at the current indentation.</summary>
        public void Paste(string text)
        {
            var lines = text.TrimEnd('\n').Split('\n');
            foreach (var line in lines) Line(line);
        }

        public void Open(string header)
        {
            Line(header);
            Line("{");
            Indent++;
        }

        public void Open() { Line("{"); Indent++; }

        public void Close(string suffix = "")
        {
            Indent--;
            Line("}" + suffix);
        }

        public override string ToString() => _sb.ToString();

        /// <summary>Whether a constant survives as a float literal (no NaN, no infinity, not beyond float's range).</summary>
        public static bool IsFiniteFloat(double value)
        {
            float f = (float)value;
            return !float.IsNaN(f) && !float.IsInfinity(f);
        }

        /// <summary>Formats a float literal with invariant culture and an <c>f</c> suffix.</summary>
        public static string FloatLiteral(double value)
        {
            string s = ((float)value).ToString("R", CultureInfo.InvariantCulture);
            if (s.IndexOf('.') < 0 && s.IndexOf('E') < 0) s += ".0";
            return s + "f";
        }

        /// <summary>Formats an integer with invariant culture.</summary>
        public static string IntLiteral(long value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
