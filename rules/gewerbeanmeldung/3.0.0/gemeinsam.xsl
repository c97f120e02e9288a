<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shared by fachverfahren.xsl and dms.xsl (xsl:include): the Meldungen of
  an XGewerbeanzeige message, the business checks that refuse a message,
  and small helpers.

  XSLT 1.0 on purpose: the package must give the same result with the
  hub's processor and with xsltproc. XGewerbeanzeige versions differ in
  their namespace only (…/spezifikation/2.0, 2.1, 2.2), so elements are
  selected by local-name(); code list values sit in the unqualified
  `code` child.
-->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">

  <!-- The message header. -->
  <xsl:variable name="kopf" select="/*/*[local-name() = 'nachrichtenkopf']"/>
  <xsl:variable name="nachricht-uuid"
      select="normalize-space($kopf/*[local-name() = 'identifikation.nachricht']/*[local-name() = 'nachrichtenUUID'])"/>
  <xsl:variable name="nachricht-zeitpunkt"
      select="normalize-space($kopf/*[local-name() = 'identifikation.nachricht']/*[local-name() = 'erstellungszeitpunkt'])"/>
  <xsl:variable name="autor-kennung"
      select="normalize-space($kopf/*[local-name() = 'autor']/*[local-name() = 'behoerdenkennung']/*[local-name() = 'kennung']/code)"/>

  <!-- One Meldung per satz: anmeldung, ummeldung or abmeldung. -->
  <xsl:variable name="meldungen"
      select="/*/*[local-name() = 'satz']/*[local-name() = 'anmeldung' or local-name() = 'ummeldung' or local-name() = 'abmeldung']"/>

  <!-- The Kommune (AGS) of the first Meldung, as the rule's extract. -->
  <xsl:variable name="erste-ags">
    <xsl:call-template name="ags">
      <xsl:with-param name="meldung" select="$meldungen[1]"/>
    </xsl:call-template>
  </xsl:variable>

  <!--
    Business checks. Every refusal ends the transformation with
    xsl:message terminate="yes"; the hub rejects the message with the
    text as reason (no retry, no partial delivery).
  -->
  <xsl:template name="pruefen">
    <xsl:if test="not($meldungen)">
      <xsl:message terminate="yes">Gewerbemeldung abgelehnt: die Nachricht enthält keinen Meldungssatz (anmeldung, ummeldung oder abmeldung).</xsl:message>
    </xsl:if>
    <xsl:for-each select="$meldungen">
      <xsl:variable name="uuid" select="normalize-space(*[local-name() = 'uuid'])"/>
      <xsl:variable name="uuid-ok">
        <xsl:call-template name="ist-uuid">
          <xsl:with-param name="wert" select="$uuid"/>
        </xsl:call-template>
      </xsl:variable>
      <xsl:if test="$uuid-ok != 'true'">
        <xsl:message terminate="yes">Gewerbemeldung abgelehnt: Meldung <xsl:value-of select="position()"/> hat keine gültige uuid („<xsl:value-of select="$uuid"/>“); ohne sie kann die Meldung weder im Fachverfahren noch in der E-Akte eindeutig abgelegt werden.</xsl:message>
      </xsl:if>
      <xsl:variable name="anschrift" select="*[local-name() = 'gewerbe']/*[local-name() = 'anschrift']"/>
      <xsl:if test="normalize-space($anschrift/*[local-name() = 'ort']) = '' or normalize-space($anschrift/*[local-name() = 'plz']) = ''">
        <xsl:message terminate="yes">Gewerbemeldung abgelehnt: Meldung <xsl:value-of select="$uuid"/> hat keine Betriebsanschrift (gewerbe/anschrift mit PLZ und Ort); ohne Betriebsstätte kann das Gewerbeamt die Meldung nicht übernehmen.</xsl:message>
      </xsl:if>
      <xsl:variable name="ags">
        <xsl:call-template name="ags">
          <xsl:with-param name="meldung" select="."/>
        </xsl:call-template>
      </xsl:variable>
      <xsl:if test="$ags != $erste-ags">
        <xsl:message terminate="yes">Gewerbemeldung abgelehnt: die Meldungen der Nachricht betreffen verschiedene Gemeinden (<xsl:value-of select="$erste-ags"/> und <xsl:value-of select="$ags"/>); jede Gemeinde braucht eine eigene Nachricht.</xsl:message>
      </xsl:if>
    </xsl:for-each>
  </xsl:template>

  <!-- AGS of a Meldung: gemeindeSchluessel, else the message author. -->
  <xsl:template name="ags">
    <xsl:param name="meldung"/>
    <xsl:variable name="gemeinde" select="normalize-space($meldung/*[local-name() = 'gemeindeSchluessel']/code)"/>
    <xsl:choose>
      <xsl:when test="$gemeinde != ''">
        <xsl:value-of select="$gemeinde"/>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$autor-kennung"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- 'true' if $wert has the shape of a UUID (8-4-4-4-12 hex digits). -->
  <xsl:template name="ist-uuid">
    <xsl:param name="wert"/>
    <xsl:value-of select="string-length($wert) = 36 and translate($wert, '0123456789abcdefABCDEF', '0000000000000000000000') = '00000000-0000-0000-0000-000000000000'"/>
  </xsl:template>

  <!-- A UUID in lower case (xdomea and the import format use lower case). -->
  <xsl:template name="klein">
    <xsl:param name="wert"/>
    <xsl:value-of select="translate($wert, 'ABCDEF', 'abcdef')"/>
  </xsl:template>

  <!-- The Betrieb's name: Geschäftsbezeichnung, else the registered name. -->
  <xsl:template name="betriebsname">
    <xsl:param name="meldung"/>
    <xsl:variable name="betrieb" select="$meldung/*[local-name() = 'gewerbe']/*[local-name() = 'betrieb']"/>
    <xsl:choose>
      <xsl:when test="normalize-space($betrieb/*[local-name() = 'geschaeftsbezeichnung']) != ''">
        <xsl:value-of select="normalize-space($betrieb/*[local-name() = 'geschaeftsbezeichnung'])"/>
      </xsl:when>
      <xsl:when test="normalize-space($betrieb/*[local-name() = 'eingetragenerName']) != ''">
        <xsl:value-of select="normalize-space($betrieb/*[local-name() = 'eingetragenerName'])"/>
      </xsl:when>
      <xsl:otherwise>
        <!-- Einzelgewerbe without a name: the first person's name. -->
        <xsl:for-each select="$meldung/*[local-name() = 'gewerbe']/*[local-name() = 'beteiligtePerson'][1]">
          <xsl:value-of select="normalize-space(concat(*[local-name() = 'vorname'], ' ', *[local-name() = 'familienname']))"/>
        </xsl:for-each>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- German label of the Meldungsart. -->
  <xsl:template name="meldungsart">
    <xsl:param name="meldung"/>
    <xsl:choose>
      <xsl:when test="local-name($meldung) = 'anmeldung'">Gewerbeanmeldung</xsl:when>
      <xsl:when test="local-name($meldung) = 'ummeldung'">Gewerbeummeldung</xsl:when>
      <xsl:otherwise>Gewerbeabmeldung</xsl:otherwise>
    </xsl:choose>
  </xsl:template>

</xsl:stylesheet>
