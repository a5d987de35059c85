{{- define "signing-proxy.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "signing-proxy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "signing-proxy.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- /* The TCP port of an origin URL: explicit, else 443 for https/wss, 6379 for redis(s), 80 otherwise. */ -}}
{{- define "signing-proxy.originPort" -}}
{{- $url := urlParse . -}}
{{- $hostPort := regexFind ":[0-9]+$" $url.host -}}
{{- if $hostPort -}}{{ trimPrefix ":" $hostPort }}
{{- else if has $url.scheme (list "https" "wss") -}}443
{{- else if has $url.scheme (list "redis" "rediss") -}}6379
{{- else -}}80
{{- end -}}
{{- end -}}

{{- /* image: repository@digest when a digest is set (pinned), else repository:tag. */ -}}
{{- define "signing-proxy.image" -}}
{{- if .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .Values.image.digest) -}}
{{- fail "image.digest must be sha256:<64 hex>" -}}
{{- end -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}
