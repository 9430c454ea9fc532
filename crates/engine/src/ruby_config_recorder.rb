# upkeep's gitlab.rb recorder: evaluates gitlab.rb texts as GitLab Omnibus
# loads /etc/gitlab/gitlab.rb (instance_eval of the file's text) on objects
# that record what it sets, and prints every setting as JSON.
#
# - Every top-level name is a settings object: `name['k'] = v`, `name[:k]`
#   and `name["k"]` are one key; reading a key auto-vivifies a nested object
#   (Omnibus' ConfigMash does too while loading), so `name['a']['b'] = 1`
#   works and a key only read shows up as {}.
# - A name called with arguments (`external_url '…'`, `mattermost_external_url
#   '…'`) records its argument.
# - Conditionals, blocks, methods run as Ruby runs them; the last assignment
#   wins.
#
# Protocol: ARGV[0] is a directory to chroot into before any gitlab.rb code
# runs ("/" for none); stdin is a JSON array of texts; stdout gets a line
# "@@upkeep-recorder@@" and then a JSON array with, per text, either
#   {"ok": true, "settings": {...}, "lines": {"name": {"key": LINE}, "name": LINE}}
# or {"ok": false, "error": "...", "line": LINE-or-null}.
# What a text prints goes to stderr. Embedded in the upkeep binaries.
require 'json'

module UpkeepRecorder
  FILE = 'gitlab.rb'.freeze

  def self.caller_line
    loc = caller_locations.find { |l| l.path == FILE }
    loc&.lineno
  end

  class Settings
    attr_reader :lines

    def initialize
      @h = {}
      @lines = {}
    end

    def [](key)
      @h[key.to_s] ||= Settings.new
    end

    def []=(key, value)
      k = key.to_s
      @lines[k] = UpkeepRecorder.caller_line
      @h[k] = value
    end

    def merge!(other)
      other.each { |k, v| self[k] = v }
      self
    end
    alias update merge!

    def key?(key)
      @h.key?(key.to_s)
    end

    def each(&block)
      @h.each(&block)
    end

    def empty?
      @h.empty?
    end

    def to_data
      @h.each_with_object({}) { |(k, v), out| out[k] = UpkeepRecorder.plain(v) }
    end
  end

  def self.plain(v)
    case v
    when Settings then v.to_data
    when Hash then v.each_with_object({}) { |(k, x), o| o[k.to_s] = plain(x) }
    when Array then v.map { |x| plain(x) }
    when Symbol then v.to_s
    when String then v.dup.force_encoding('UTF-8').scrub
    when Integer, Float, true, false, nil then v
    else v.inspect
    end
  end

  class Config
    def initialize
      @upkeep_settings = {}
      @upkeep_lines = {}
    end

    def method_missing(name, *args, &block)
      n = name.to_s
      return super if n.end_with?('=', '?', '!')
      if args.empty?
        return @upkeep_settings[n] if @upkeep_settings.key?(n)

        return (@upkeep_settings[n] = Settings.new)
      end
      @upkeep_lines[n] = UpkeepRecorder.caller_line
      @upkeep_settings[n] = args.length == 1 ? args.first : args
    end

    def respond_to_missing?(name, include_private = false)
      !name.to_s.end_with?('=', '?', '!') || super
    end

    # The text's own local variables share this method's scope: nothing
    # here is read after the text ran but self.
    def upkeep_load(text)
      instance_eval(text, FILE, 1)
      upkeep_dump
    end

    def upkeep_dump
      lines = {}
      @upkeep_settings.each do |k, v|
        lines[k] = v.is_a?(Settings) ? v.lines : @upkeep_lines[k]
      end
      {
        'ok' => true,
        'settings' => @upkeep_settings.transform_values { |v| UpkeepRecorder.plain(v) },
        'lines' => lines
      }
    end
  end

  def self.error_line(e)
    if e.is_a?(SyntaxError)
      m = e.message[/#{Regexp.escape(FILE)}:(\d+)/, 1]
      return m&.to_i
    end
    loc = (e.backtrace_locations || []).find { |l| l.path == FILE }
    loc&.lineno
  end

  def self.evaluate(text)
    Config.new.upkeep_load(text)
  rescue Exception => e # rubocop:disable Lint/RescueException
    raise if e.is_a?(Interrupt)

    { 'ok' => false, 'error' => "#{e.class}: #{e.message.lines.first.to_s.strip}", 'line' => error_line(e) }
  end
end

out = $stdout
texts = JSON.parse($stdin.read)
root = ARGV[0] || '/'
if root != '/'
  Dir.chroot(root)
  Dir.chdir('/')
end
$stdout = $stderr
results = texts.map { |t| UpkeepRecorder.evaluate(t.dup.force_encoding('UTF-8')) }
out.write("\n@@upkeep-recorder@@\n")
out.write(JSON.generate(results))
out.write("\n")
out.flush
