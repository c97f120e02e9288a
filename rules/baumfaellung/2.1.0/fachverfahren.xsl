<?xml version="1.0" encoding="UTF-8"?>
<!--
  Baumfällgenehmigung (demo form urn:example:drehscheibe:formulare:baumfaellung:1)
  → import XML of the Umwelt Fachverfahren
  (urn:drehscheibe:import:umwelt:baumfaellung:1, schema umwelt-import.xsd).

  The Fachverfahren may run at a neighbour Kommune as a shared service
  ("umlenken" by configuration): <auftrag> names the requesting Kommune by
  the AGS of the Grundstück, next to the processing Mandant and Stelle
  (rule parameters of the processing tenant's route).

  XSLT 1.0 on purpose: the same result with the hub's processor and with
  xsltproc.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:bf="urn:example:drehscheibe:formulare:baumfaellung:1"
    xmlns="urn:drehscheibe:import:umwelt:baumfaellung:1"
    exclude-result-prefixes="bf">

  <xsl:output method="xml" indent="yes" encoding="UTF-8"/>
  <xsl:strip-space elements="*"/>

  <xsl:param name="mandant"/>
  <xsl:param name="bearbeitende_stelle" select="'Untere Naturschutzbehörde'"/>

  <xsl:template match="/bf:baumfaellantrag">
    <xsl:if test="not(bf:baum)">
      <xsl:message terminate="yes">Baumfällantrag abgelehnt: kein Baum angegeben (bf:baum fehlt).</xsl:message>
    </xsl:if>
    <xsl:variable name="ags" select="normalize-space(bf:grundstueck/bf:ags)"/>
    <baumfaellImport version="1">
      <auftrag>
        <leistung>99104005000000</leistung>
        <antragstellendeKommune ags="{$ags}"/>
        <bearbeitung mandant="{$mandant}">
          <xsl:value-of select="$bearbeitende_stelle"/>
        </bearbeitung>
      </auftrag>
      <xsl:apply-templates select="bf:antragsteller"/>
      <grundstueck ags="{$ags}">
        <xsl:apply-templates select="bf:grundstueck/bf:anschrift | bf:grundstueck/bf:flurstueck"/>
      </grundstueck>
      <baeume anzahl="{count(bf:baum)}">
        <xsl:apply-templates select="bf:baum"/>
      </baeume>
      <xsl:apply-templates select="bf:begruendung"/>
    </baumfaellImport>
  </xsl:template>

  <xsl:template match="bf:antragsteller">
    <antragsteller>
      <xsl:apply-templates select="bf:name | bf:email"/>
    </antragsteller>
  </xsl:template>

  <!-- Simple values: same local name, text trimmed, empty ones left out. -->
  <xsl:template match="bf:name | bf:email | bf:anschrift | bf:flurstueck | bf:begruendung">
    <xsl:if test="normalize-space(.) != ''">
      <xsl:element name="{local-name()}" namespace="urn:drehscheibe:import:umwelt:baumfaellung:1">
        <xsl:value-of select="normalize-space(.)"/>
      </xsl:element>
    </xsl:if>
  </xsl:template>

  <xsl:template match="bf:baum">
    <baum nr="{position()}">
      <xsl:if test="normalize-space(@art) != ''">
        <xsl:attribute name="art"><xsl:value-of select="normalize-space(@art)"/></xsl:attribute>
      </xsl:if>
      <xsl:if test="string(number(@stammumfangCm)) != 'NaN'">
        <xsl:attribute name="stammumfangCm"><xsl:value-of select="number(@stammumfangCm)"/></xsl:attribute>
      </xsl:if>
      <xsl:if test="string(number(@hoeheM)) != 'NaN'">
        <xsl:attribute name="hoeheM"><xsl:value-of select="number(@hoeheM)"/></xsl:attribute>
      </xsl:if>
    </baum>
  </xsl:template>

</xsl:stylesheet>
