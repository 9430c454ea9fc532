# Loads a gitlab.rb the way GitLab Omnibus does -- every top-level name is a
# settings object that auto-vivifies nested hashes (`gitlab_rails['a']['b'] =
# 1`), keys are strings whether written 'key', "key" or :key, and a name
# called with an argument (`external_url '...'`, `mattermost_external_url`)
# records that argument -- then prints every setting as JSON.
# Usage: ruby gitlab_rb_eval.rb PATH/gitlab.rb
#        ruby gitlab_rb_eval.rb --many PATH... (a JSON array, per file
#        {"ok": true, "settings": {...}} or {"ok": false, "error": "..."})
require 'json'

class Settings
  def initialize
    @h = {}
  end

  def [](key)
    @h[key.to_s] ||= Settings.new
  end

  def []=(key, value)
    @h[key.to_s] = value
  end

  def merge!(other)
    other.each { |k, v| self[k] = v }
    self
  end

  def to_data
    @h.each_with_object({}) do |(k, v), out|
      d = Settings.plain(v)
      out[k] = d unless v.is_a?(Settings) && d.empty?
    end
  end

  def self.plain(v)
    case v
    when Settings then v.to_data
    when Hash then v.each_with_object({}) { |(k, x), o| o[k.to_s] = plain(x) }
    when Array then v.map { |x| plain(x) }
    when Symbol then v.to_s
    else v
    end
  end
end

class GitlabRb
  def initialize
    @settings = {}
  end

  def method_missing(name, *args)
    n = name.to_s
    return (@settings[n] ||= Settings.new) if args.empty?

    @settings[n] = args.length == 1 ? args.first : args
  end

  def respond_to_missing?(*)
    true
  end

  def load_file(path)
    instance_eval(File.read(path), path)
    self
  end

  def dump
    @settings.each_with_object({}) do |(k, v), out|
      d = Settings.plain(v)
      out[k] = d unless v.is_a?(Settings) && d.empty?
    end
  end
end

if ARGV.first == '--many'
  out = $stdout
  $stdout = $stderr
  results = ARGV.drop(1).map do |path|
    { 'ok' => true, 'settings' => GitlabRb.new.load_file(path).dump }
  rescue ScriptError, StandardError => e
    { 'ok' => false, 'error' => "#{e.class}: #{e.message.lines.first}" }
  end
  out.puts JSON.generate(results)
else
  puts JSON.pretty_generate(GitlabRb.new.load_file(ARGV.fetch(0)).dump)
end
