# NixOS module: services.mailzone runs `mailzone serve` (docs/nixos.md shows a whole mail
# host). Import it with `imports = [ ./packaging/nixos/module.nix ];`.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.mailzone;
  settingsFormat = pkgs.formats.toml { };

  # `domains` are the [domain."<name>"] tables, merged into `settings`.
  configFile = settingsFormat.generate "mailzone.toml" (
    lib.recursiveUpdate cfg.settings (lib.optionalAttrs (cfg.domains != { }) { domain = cfg.domains; })
  );

  environment = {
    MAILZONE_CONFIG = "/etc/mailzone/mailzone.toml";
    MAILZONE_STATE_DIR = "/var/lib/mailzone";
    MAILZONE_LOG = cfg.logLevel;
  };

  # The sandbox of every mailzone unit (`systemd-analyze security mailzone`: about 1.1).
  hardening = {
    DynamicUser = true;
    User = "mailzone";
    Group = "mailzone";
    StateDirectory = "mailzone";
    StateDirectoryMode = "0700";
    UMask = "0077";
    LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") cfg.credentials;

    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateUsers = true;
    PrivateIPC = true;
    PrivateMounts = true;
    ProtectHostname = true;
    ProtectClock = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    RemoveIPC = true;
    KeyringMode = "private";
    DevicePolicy = "closed";
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged @resources"
    ];
    SystemCallErrorNumber = "EPERM";
  };

  # A oneshot `mailzone <command>` unit and its timer, for hosts without the service.
  timedCommand = command: calendar: {
    service = {
      description = "mailzone ${command}";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      inherit environment;
      serviceConfig = hardening // {
        Type = "oneshot";
        ExecStart = "${lib.getExe cfg.package} ${command}";
      };
    };
    timer = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = calendar;
        RandomizedDelaySec = "5min";
        Persistent = true;
      };
    };
  };
  apply = timedCommand "apply --quiet" cfg.timers.apply;
  check = timedCommand "check" cfg.timers.check;
in
{
  options.services.mailzone = {
    enable = lib.mkEnableOption "mailzone, which keeps the DNS records of mail domains published and checked (`mailzone serve`)";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The mailzone package.";
    };

    settings = lib.mkOption {
      type = settingsFormat.type;
      default = { };
      example = lib.literalExpression ''
        {
          server = {
            hostname = "mx1.example.org";
            ipv4 = [ "192.0.2.10" ];
            services = { imap = { }; submission = { }; };
            tls.certificate = "/var/lib/acme/mx1.example.org/fullchain.pem";
          };
          dnsServer.primary = {
            kind = "rfc2136";
            host = "192.0.2.53";
            keyName = "mailzone";
            keyFile = "/run/credentials/mailzone.service/tsig.key";
          };
        }
      '';
      description = ''
        mailzone.toml as Nix values (docs/configuration.md has every key), rendered to
        /etc/mailzone/mailzone.toml. Secrets do not belong here (the file is in the Nix
        store, readable by everyone): name files handed over with `credentials` instead.
        Use absolute paths.
      '';
    };

    domains = lib.mkOption {
      type = lib.types.attrsOf settingsFormat.type;
      default = { };
      example = lib.literalExpression ''
        {
          "example.org" = {
            dmarc.policy = "reject";
            mtaSts.mode = "enforce";
            dnsManagement.automatic.dnsServer = "primary";
          };
        }
      '';
      description = "The mail domains: the `[domain.\"<name>\"]` tables of the config.";
    };

    credentials = lib.mkOption {
      type = lib.types.attrsOf lib.types.path;
      default = { };
      example = {
        "tsig.key" = "/run/secrets/mailzone-tsig";
      };
      description = ''
        Secret files handed to the service with systemd's LoadCredential=: each is readable
        by the service only, as /run/credentials/<unit>/<name> (for the service:
        /run/credentials/mailzone.service/<name>); name that path in `settings`.
      '';
    };

    listen = lib.mkOption {
      type = lib.types.str;
      default = "127.0.0.1:8080";
      description = "Where the HTTP API (and the public endpoints, without `publicListen`) listens.";
    };

    publicListen = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "127.0.0.1:8081";
      description = "A separate listener for the public endpoints (MTA-STS, autoconfig, autodiscover).";
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "--reconcile-interval"
        "30m"
      ];
      description = "More `mailzone serve` options.";
    };

    logLevel = lib.mkOption {
      type = lib.types.str;
      default = "info";
      description = "MAILZONE_LOG: error, warn, info, debug, or a tracing filter.";
    };

    timers = {
      enable = lib.mkEnableOption "`mailzone apply` and `mailzone check` on timers instead of the service";
      apply = lib.mkOption {
        type = lib.types.str;
        default = "hourly";
        description = "When `mailzone apply` runs (systemd calendar event).";
      };
      check = lib.mkOption {
        type = lib.types.str;
        default = "00/6:15";
        description = "When `mailzone check` runs; the unit fails on an error finding.";
      };
    };
  };

  config = lib.mkMerge [
    (lib.mkIf (cfg.enable || cfg.timers.enable) {
      environment.systemPackages = [ cfg.package ];
      environment.etc."mailzone/mailzone.toml".source = configFile;
    })

    (lib.mkIf cfg.enable {
      systemd.services.mailzone = {
        description = "mailzone: DNS records of mail domains, published and checked";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" ];
        # A changed config is read again on SIGHUP; no restart needed.
        reloadTriggers = [ configFile ];
        environment =
          environment
          // {
            MAILZONE_LISTEN = cfg.listen;
          }
          // lib.optionalAttrs (cfg.publicListen != null) {
            MAILZONE_PUBLIC_LISTEN = cfg.publicListen;
          };
        serviceConfig = hardening // {
          Type = "notify";
          NotifyAccess = "main";
          ExecStart = "${lib.getExe cfg.package} serve ${lib.escapeShellArgs cfg.extraArgs}";
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          Restart = "on-failure";
          RestartSec = "5s";
          WatchdogSec = "60s";
          TimeoutStopSec = "90s";
        };
      };
    })

    (lib.mkIf cfg.timers.enable {
      assertions = [
        {
          assertion = !cfg.enable;
          message = "services.mailzone: the service already does what the timers do; enable one of them.";
        }
      ];
      systemd.services.mailzone-apply = apply.service;
      systemd.timers.mailzone-apply = apply.timer;
      systemd.services.mailzone-check = check.service;
      systemd.timers.mailzone-check = check.timer;
    })
  ];
}
